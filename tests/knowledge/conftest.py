"""Fixtures for knowledge ingestion: the runtime's app with Chroma and Ollama configured,
the worker's knowledge poller driven in-process (or a worker process), and creators whose
Chroma tenant exists as the operator creates it.

Real PostgreSQL, ChromaDB and Ollama (with the embedding model) throughout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from coachops_crds.constants import CHROMA_DATABASE, chroma_tenant
from coachops_crds.constants import program_id as derived_program_id
from coachops_devstack.ollama import OllamaStack
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_operator.vectors import VectorStore as OperatorVectors
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.ingest import KnowledgePoller
from coachops_runtime.knowledge.vectors import VectorStore
from tests.conftest import Database
from tests.mail.conftest import worker_env
from tests.ollama.conftest import ollama, ollama_stack
from tests.runtime.conftest import Creator, Tenants, app, client, keys_dir, tenants

__all__ = ["app", "client", "keys_dir", "ollama", "ollama_stack", "tenants"]


@pytest.fixture
def runtime_settings(
    database: Database, stack: Stack, keys_dir: Path, ollama_stack: OllamaStack
) -> Settings:
    return Settings(
        environment="development",
        database_url=database.runtime_dsn,
        redis_url=stack.redis.url,
        chroma_url=stack.chroma.url,
        ollama_url=ollama_stack.base_url,
        jwt_keys_dir=keys_dir,
        kubeconfig=None,
        tenant_cache_seconds=0,
        knowledge_max_bytes=2_000_000,
        knowledge_retry_base_seconds=0.2,
        worker_poll_seconds=0.1,
    )


@pytest.fixture
async def poller(runtime_settings: Settings) -> AsyncIterator[KnowledgePoller]:
    pool = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 6}))
    knowledge = KnowledgePoller(runtime_settings, pool)
    try:
        yield knowledge
    finally:
        await knowledge.close()
        await pool.close()


@pytest.fixture
async def vectors(stack: Stack) -> AsyncIterator[VectorStore]:
    store = VectorStore(stack.chroma.url)
    try:
        yield store
    finally:
        await store.close()


@dataclass
class Knowledge:
    """A creator's programs with knowledge, driven through the API as that creator."""

    client: httpx.AsyncClient
    tenants: Tenants
    database: Database
    embedding_model: str
    chroma_url: str

    async def creator(self, name: str) -> Creator:
        creator = await self.tenants.signed_up(name)
        store = OperatorVectors(self.chroma_url)
        try:
            await store.ensure(chroma_tenant(name), CHROMA_DATABASE)
        finally:
            await store.close()
        return creator

    async def program(self, creator: Creator, name: str) -> uuid.UUID:
        program = derived_program_id(creator.name, name)
        spec = {
            "title": name.title(),
            "persona": {"name": "Coach"},
            "model": {"embedding": self.embedding_model},
        }
        await self.tenants.owner(
            creator.creator_id,
            "INSERT INTO programs (program_id, creator_id, name, title, spec)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            program,
            creator.creator_id,
            name,
            name.title(),
            json.dumps(spec),
        )
        creator.programs[name] = program
        return program

    async def upload(
        self, creator: Creator, program: str, filename: str, content: bytes, media: str
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/programs/{program}/knowledge",
            files={"file": (filename, content, media)},
            headers=creator.headers,
        )

    async def documents(self, creator: Creator, program: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v1/programs/{program}/knowledge?limit=200", headers=creator.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def drain(self, poller: KnowledgePoller) -> None:
        """Poll until the queue is empty (retries scheduled later are waited for)."""
        async with asyncio.timeout(180):
            while True:
                if await poller.poll() == 0:
                    (due,) = await self.superuser("SELECT count(*) AS n FROM knowledge_due")
                    if due["n"] == 0:
                        return
                    await asyncio.sleep(0.1)

    async def superuser(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database.superuser_dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@pytest.fixture
def knowledge(
    client: httpx.AsyncClient,
    tenants: Tenants,
    database: Database,
    ollama_stack: OllamaStack,
    stack: Stack,
) -> Knowledge:
    return Knowledge(client, tenants, database, ollama_stack.embedding_model, stack.chroma.url)


StartWorker = Callable[[Settings, str], Awaitable[ManagedProcess]]


@pytest.fixture
async def start_worker(tmp_path: Path) -> AsyncIterator[StartWorker]:
    """Starts ``python -m coachops_runtime.worker`` processes; stops them afterwards."""
    started: list[ManagedProcess] = []

    async def start(settings: Settings, name: str = "worker") -> ManagedProcess:
        env = worker_env(settings)
        knowledge = [name for name in Settings.model_fields if name.startswith("knowledge_")]
        for setting in ("chroma_url", "ollama_url", *knowledge):
            env[f"COACHOPS_{setting.upper()}"] = str(getattr(settings, setting))
        process = ManagedProcess(
            name,
            [sys.executable, "-m", "coachops_runtime.worker"],
            tmp_path / f"{name}.log",
            env=env,
        )
        process.start()
        started.append(process)

        async def running() -> bool:
            return "worker started" in process.log_path.read_text(errors="replace")

        await process.wait_ready(running, timeout=30)
        return process

    yield start
    for process in started:
        process.stop()
