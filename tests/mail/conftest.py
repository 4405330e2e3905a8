"""Fixtures for e-mail delivery: worker settings on a fresh database, the runtime's app for
the sign-up path, worker processes, and outbox rows queued as the runtime queues them."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from coachops_crds.constants import tenant_id
from coachops_devstack.mailpit import Mailpit
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from tests.conftest import Database
from tests.runtime.conftest import (  # noqa: F401 - fixtures, reused as they are
    app,
    client,
    keys_dir,
    runtime_settings,
    tenants,
)

PUBLIC_BASE_URL = "http://app.coachops.test"


def worker_settings_for(
    database: Database, stack: Stack, smtp_port: int, **changes: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": database.runtime_dsn,
        "redis_url": stack.redis.url,
        "kubeconfig": None,
        "public_base_url": PUBLIC_BASE_URL,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_tls": "none",
        "smtp_timeout_seconds": 5.0,
        "mail_retry_base_seconds": 1.0,
        "mail_retry_max_seconds": 1.0,
        "worker_poll_seconds": 0.1,
        **changes,
    }
    return Settings(**values)


def worker_env(settings: Settings) -> dict[str, str]:
    """The ``COACHOPS_*`` environment that gives a worker process these settings."""
    names = (
        "environment",
        "public_base_url",
        "smtp_host",
        "smtp_port",
        "smtp_tls",
        "smtp_timeout_seconds",
        "mail_retry_base_seconds",
        "mail_retry_max_seconds",
        "mail_max_attempts",
        "mail_concurrency",
        "worker_poll_seconds",
    )
    env = {f"COACHOPS_{name.upper()}": str(getattr(settings, name)) for name in names}
    env["COACHOPS_DATABASE_URL"] = settings.database_url.get_secret_value()
    env["COACHOPS_REDIS_URL"] = settings.redis_url.get_secret_value()
    env["KUBECONFIG"] = ""
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def worker_settings(database: Database, stack: Stack, mailpit: Mailpit) -> Settings:
    return worker_settings_for(database, stack, mailpit.smtp_port)


@pytest.fixture
async def own_mailpit(tmp_path: Path) -> AsyncIterator[Mailpit]:
    """A Mailpit for one test, which it may stop and start."""
    server = Mailpit(tmp_path / "mailpit")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


StartWorker = Callable[..., Awaitable[ManagedProcess]]


@pytest.fixture
async def start_worker(tmp_path: Path) -> AsyncIterator[StartWorker]:
    """Starts ``python -m coachops_runtime.worker`` processes; stops them afterwards."""
    started: list[ManagedProcess] = []

    async def start(settings: Settings, name: str = "worker") -> ManagedProcess:
        process = ManagedProcess(
            name,
            [sys.executable, "-m", "coachops_runtime.worker"],
            tmp_path / f"{name}.log",
            env=worker_env(settings),
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


@pytest.fixture
async def worker_pool(worker_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(worker_settings.model_copy(update={"db_pool_size": 6}))
    try:
        yield pool
    finally:
        await pool.close()


class Outbox:
    """Tenants and outbox rows written as the operator and the runtime write them, and the
    rows read back as the superuser (who sees every tenant)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def tenant(self, name: str) -> uuid.UUID:
        creator_id = tenant_id(name)
        conn = await asyncpg.connect(self.database.owner_dsn)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('coachops.tenant_id', $1, true)", str(creator_id)
                )
                await conn.execute(
                    "INSERT INTO creators (creator_id, name, display_name, contact_email, plan,"
                    " isolation) VALUES ($1, $2, $3, $4, '{}'::jsonb, 'shared')",
                    creator_id,
                    name,
                    name.title(),
                    f"{name}@example.com",
                )
        finally:
            await conn.close()
        return creator_id

    async def queue(
        self,
        creator_id: uuid.UUID,
        rows: list[tuple[str, str, dict[str, Any]]],
    ) -> list[uuid.UUID]:
        """(to, template, payload) rows, queued in one transaction by the runtime's role."""
        conn = await asyncpg.connect(self.database.runtime_dsn)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('coachops.tenant_id', $1, true)", str(creator_id)
                )
                return [
                    await conn.fetchval(
                        "INSERT INTO email_outbox (creator_id, to_address, template, payload)"
                        " VALUES ($1, $2, $3, $4::jsonb) RETURNING email_id",
                        creator_id,
                        to,
                        template,
                        json.dumps(payload),
                    )
                    for to, template, payload in rows
                ]
        finally:
            await conn.close()

    async def rows(self, *email_ids: uuid.UUID) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database.superuser_dsn)
        try:
            return list(
                await conn.fetch(
                    "SELECT email_id, sent_at, attempts, last_error, next_attempt_at, dead_at,"
                    " next_attempt_at > now() AS later,"
                    " EXISTS (SELECT FROM email_due d WHERE d.email_id = o.email_id) AS queued"
                    " FROM email_outbox o WHERE email_id = ANY($1::uuid[]) ORDER BY created_at",
                    list(email_ids),
                )
            )
        finally:
            await conn.close()

    async def row(self, email_id: uuid.UUID) -> asyncpg.Record:
        (found,) = await self.rows(email_id)
        return found


@pytest.fixture
def outbox(database: Database) -> Outbox:
    return Outbox(database)


async def wait_for_mail(
    mailpit: Mailpit, to: str, count: int = 1, within: float = 30.0
) -> list[dict[str, Any]]:
    """The messages to ``to`` once there are ``count`` of them (fails after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while True:
        messages = await mailpit.messages(to=to)
        if len(messages) >= count or time.monotonic() > deadline:
            assert len(messages) == count, f"{len(messages)} messages to {to}, want {count}"
            return messages
        await asyncio.sleep(0.1)
