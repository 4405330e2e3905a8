"""Fixtures for the runtime: an app on a fresh migrated database, and tenants to call it as.

The operator is not under test here, so tenants and program rows are written directly as
the schema owner, the way the operator writes them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from coachops_crds.constants import program_id as derived_program_id
from coachops_crds.constants import tenant_id
from coachops_devstack.stack import Stack
from coachops_runtime.app import create_app
from coachops_runtime.auth.keys import generate_key_file
from coachops_runtime.kit.settings import Settings
from tests.conftest import Database

PASSWORD = "correct horse battery staple"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "jwt-keys"
    generate_key_file(directory, "2026-01-01")
    return directory


@pytest.fixture
def runtime_settings(database: Database, stack: Stack, keys_dir: Path) -> Settings:
    return Settings(
        environment="development",
        database_url=database.runtime_dsn,
        redis_url=stack.redis.url,
        jwt_keys_dir=keys_dir,
        kubeconfig=None,
        tenant_cache_seconds=0,
    )


@pytest.fixture
async def app(runtime_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(runtime_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as http:
        yield http


@dataclass
class Creator:
    name: str
    creator_id: uuid.UUID
    email: str
    token: str = ""
    programs: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Tenants:
    """Creates tenants as the operator would, and signs their creators up through the API."""

    def __init__(self, database: Database, client: httpx.AsyncClient) -> None:
        self.database = database
        self.client = client

    async def owner(self, tenant: uuid.UUID, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.database.owner_dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT set_config('coachops.tenant_id', $1, true)", str(tenant))
                return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def provision(self, name: str, plan: dict[str, Any] | None = None) -> Creator:
        creator_id = tenant_id(name)
        email = f"{name}@example.com"
        await self.owner(
            creator_id,
            "INSERT INTO creators (creator_id, name, display_name, contact_email, plan, isolation)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, 'shared')",
            creator_id,
            name,
            name.title(),
            email,
            json.dumps(plan or {"requestsPerSecond": 1000}),
        )
        return Creator(name, creator_id, email)

    async def outbox(self, creator: Creator, template: str) -> str:
        rows = await self.owner(
            creator.creator_id,
            "SELECT payload FROM email_outbox WHERE template = $1 ORDER BY created_at DESC",
            template,
        )
        return str(json.loads(rows[0]["payload"])["token"])

    async def signed_up(self, name: str, plan: dict[str, Any] | None = None) -> Creator:
        creator = await self.provision(name, plan)
        response = await self.client.post(
            "/v1/auth/signup",
            json={"creator": name, "email": creator.email, "password": PASSWORD},
        )
        assert response.status_code == 202, response.text
        token = await self.outbox(creator, "verify_email")
        assert (await self.client.post("/v1/auth/verify", json={"token": token})).status_code == 204
        response = await self.client.post(
            "/v1/auth/login", json={"email": creator.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        creator.token = response.json()["access_token"]
        return creator

    async def add_program(self, creator: Creator, name: str) -> uuid.UUID:
        program = derived_program_id(creator.name, name)
        await self.owner(
            creator.creator_id,
            "INSERT INTO programs (program_id, creator_id, name, title, spec)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            program,
            creator.creator_id,
            name,
            name.title(),
            json.dumps({"title": name.title(), "persona": {"name": "Coach"}}),
        )
        creator.programs[name] = program
        return program


@pytest.fixture
def tenants(database: Database, client: httpx.AsyncClient) -> Tenants:
    return Tenants(database, client)
