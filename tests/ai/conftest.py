"""Fixtures for AI replies: the runtime's app and the worker's reply poller (in-process or
as worker processes) on real PostgreSQL, Redis, ChromaDB and Ollama (tiny chat model,
MiniLM embeddings; SmolLM2 where a test says so)."""

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
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.ingest import KnowledgePoller
from tests.conftest import Database
from tests.mail.conftest import worker_env
from tests.ollama.conftest import (
    model_registry,
    ollama,
    ollama_client,
    ollama_fault,
    ollama_stack,
)
from tests.ollama.conftest import pulled_chat_model as pulled_chat_model
from tests.runtime.conftest import Creator, Tenants, app, client, keys_dir, tenants

__all__ = [
    "app",
    "client",
    "keys_dir",
    "model_registry",
    "ollama",
    "ollama_client",
    "ollama_fault",
    "ollama_stack",
    "tenants",
]


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
        knowledge_retry_base_seconds=0.2,
        worker_poll_seconds=0.05,
    )


@pytest.fixture
def ai_settings() -> AiSettings:
    return AiSettings(
        provider_attempts=2,
        provider_retry_seconds=0.1,
        fallback_retry_seconds=0.5,
        generation_timeout_seconds=60,
        lease_seconds=3,
        summary_every=4,
        memory_turns=2,
    )


@pytest.fixture
async def replies(
    runtime_settings: Settings, ai_settings: AiSettings
) -> AsyncIterator[ReplyPoller]:
    pool = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 8}))
    poller = ReplyPoller(runtime_settings, pool, ai_settings)
    try:
        yield poller
    finally:
        await poller.close()
        await pool.close()


@pytest.fixture
async def ingest(runtime_settings: Settings) -> AsyncIterator[KnowledgePoller]:
    pool = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 4}))
    poller = KnowledgePoller(runtime_settings, pool)
    try:
        yield poller
    finally:
        await poller.close()
        await pool.close()


@dataclass
class Coaching:
    """Creators, programs and end users, driven through the API."""

    client: httpx.AsyncClient
    tenants: Tenants
    database: Database
    ollama_stack: OllamaStack
    chroma_url: str

    async def creator(self, name: str, plan: dict[str, Any] | None = None) -> Creator:
        creator = await self.tenants.signed_up(name, plan)
        store = OperatorVectors(self.chroma_url)
        try:
            await store.ensure(chroma_tenant(name), CHROMA_DATABASE)
        finally:
            await store.close()
        return creator

    def spec(self, **model: Any) -> dict[str, Any]:
        return {
            "title": "Sleep",
            "persona": {"name": "Coach Juniper", "instructions": "Be brief.", "tone": "calm"},
            "model": {
                "chat": self.ollama_stack.chat_model,
                "embedding": self.ollama_stack.embedding_model,
                "maxTokens": 24,
                **model,
            },
            "limits": {"messagesPerUserPerDay": 100},
        }

    async def program(
        self, creator: Creator, name: str, spec: dict[str, Any] | None = None
    ) -> uuid.UUID:
        program = derived_program_id(creator.name, name)
        await self.tenants.owner(
            creator.creator_id,
            "INSERT INTO programs (program_id, creator_id, name, title, spec)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            program,
            creator.creator_id,
            name,
            name.title(),
            json.dumps(spec or self.spec()),
        )
        creator.programs[name] = program
        return program

    async def end_user(self, creator: Creator, program: uuid.UUID) -> dict[str, str]:
        user = await self.client.post(
            "/v1/end-users",
            json={"program_ids": [str(program)], "display_name": "Robin"},
            headers=creator.headers,
        )
        assert user.status_code == 201, user.text
        token = await self.client.post(
            "/v1/end-user-tokens",
            json={"end_user_id": user.json()["end_user_id"], "program_id": str(program)},
            headers=creator.headers,
        )
        assert token.status_code == 201, token.text
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def send(self, me: dict[str, str], body: str) -> dict[str, Any]:
        response = await self.client.post("/v1/me/messages", json={"body": body}, headers=me)
        assert response.status_code == 202, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def messages(self, me: dict[str, str]) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/me/messages?limit=200", headers=me)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def superuser(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database.superuser_dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def pending_jobs(self) -> int:
        (row,) = await self.superuser("SELECT count(*) AS n FROM reply_due")
        return int(row["n"])

    async def drain(self, poller: ReplyPoller, seconds: float = 120) -> None:
        """Poll until no reply job is left (leased or scheduled ones are waited for)."""
        async with asyncio.timeout(seconds):
            while await self.pending_jobs():
                if await poller.poll() == 0:
                    await asyncio.sleep(0.05)

    async def wait_for(self, check: Callable[[], Awaitable[bool]], seconds: float = 120) -> None:
        async with asyncio.timeout(seconds):
            while not await check():  # noqa: ASYNC110 - polls the database, no event to wait on
                await asyncio.sleep(0.1)


@pytest.fixture
def coaching(
    client: httpx.AsyncClient,
    tenants: Tenants,
    database: Database,
    ollama_stack: OllamaStack,
    stack: Stack,
    pulled_chat_model: str,
) -> Coaching:
    return Coaching(client, tenants, database, ollama_stack, stack.chroma.url)


StartWorker = Callable[..., Awaitable[ManagedProcess]]


@pytest.fixture
async def start_worker(tmp_path: Path) -> AsyncIterator[StartWorker]:
    """Starts ``python -m coachops_runtime.worker`` processes; stops them afterwards."""
    started: list[ManagedProcess] = []

    async def start(settings: Settings, name: str = "worker", **ai: Any) -> ManagedProcess:
        env = worker_env(settings)
        for setting in ("chroma_url", "ollama_url"):
            env[f"COACHOPS_{setting.upper()}"] = str(getattr(settings, setting))
        for key, value in ai.items():
            env[f"COACHOPS_AI_{key.upper()}"] = str(value)
        argv = [sys.executable, "-m", "coachops_runtime.worker"]
        process = ManagedProcess(name, argv, tmp_path / f"{name}.log", env=env)
        process.start()
        started.append(process)

        async def running() -> bool:
            return "worker started" in process.log_path.read_text(errors="replace")

        await process.wait_ready(running, timeout=30)
        return process

    yield start
    for process in started:
        process.stop()
