"""Fixtures for the proactive engine: the runtime's app (tests/runtime's, no Ollama), the
scheduler on a ``FixedClock`` in-process, the channel outbox delivering to the provider
stand-ins, and a ``World`` that creates creators, programs and end users and moves the
clock."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr

from coachops_crds.constants import program_id as derived_program_id
from coachops_devstack.standins import ProviderStandIns, Received
from coachops_runtime.app import create_app
from coachops_runtime.channels.outbox import ChannelPoller
from coachops_runtime.channels.registry import adapters
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.channels.state import Channels
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.clock import FixedClock
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.state import Proactive
from tests.conftest import Database
from tests.runtime.conftest import Creator, Tenants, client, keys_dir, runtime_settings, tenants

__all__ = ["client", "keys_dir", "runtime_settings", "tenants"]

START = datetime(2026, 10, 23, 12, 0, tzinfo=UTC)  # a Friday; DST ends in the EU on the 25th


@pytest.fixture
async def standins() -> AsyncIterator[ProviderStandIns]:
    servers = ProviderStandIns()
    await servers.start()
    try:
        yield servers
    finally:
        await servers.stop()


@pytest.fixture
def channel_settings(standins: ProviderStandIns) -> ChannelSettings:
    return ChannelSettings(
        key=SecretStr(Fernet.generate_key().decode()),
        telegram_api=standins.telegram_api,
        slack_api=standins.slack_api,
        twilio_api=standins.twilio_api,
        whatsapp_api=standins.whatsapp_api,
        send_timeout_seconds=2.0,
        max_attempts=4,
        retry_base_seconds=0.05,
        retry_max_seconds=0.4,
        concurrency=4,
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def proactive_settings() -> ProactiveSettings:
    return ProactiveSettings(batch_size=50, concurrency=2)


@pytest.fixture
async def app(
    runtime_settings: Settings,
    channel_settings: ChannelSettings,
    clock: FixedClock,
    proactive_settings: ProactiveSettings,
) -> AsyncIterator[FastAPI]:
    application = create_app(runtime_settings)
    application.state.channels = Channels(channel_settings, adapters(channel_settings))
    application.state.proactive = Proactive(proactive_settings, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def pool(runtime_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 8}))
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def scheduler(
    pool: asyncpg.Pool, proactive_settings: ProactiveSettings, clock: FixedClock
) -> ProactivePoller:
    return ProactivePoller(pool, proactive_settings, Engine(proactive_settings, None), clock)


@pytest.fixture
async def outbox(
    runtime_settings: Settings, channel_settings: ChannelSettings, pool: asyncpg.Pool
) -> AsyncIterator[ChannelPoller]:
    poller = ChannelPoller(runtime_settings, pool, channel_settings)
    try:
        yield poller
    finally:
        await poller.close()


_chat_ids = itertools.count(800_000)


class World:
    """Creators, programs and end users; the clock and the pollers that act on it."""

    def __init__(
        self,
        tenants: Tenants,
        client: httpx.AsyncClient,
        database: Database,
        clock: FixedClock,
        scheduler: ProactivePoller,
        outbox: ChannelPoller,
        standins: ProviderStandIns,
        channel_settings: ChannelSettings,
    ) -> None:
        self.tenants = tenants
        self.client = client
        self.database = database
        self.clock = clock
        self.scheduler = scheduler
        self.outbox = outbox
        self.standins = standins
        self.channel_settings = channel_settings

    async def creator(self, name: str | None = None) -> Creator:
        return await self.tenants.signed_up(name or f"pa{uuid.uuid4().hex[:8]}")

    async def program(
        self,
        creator: Creator,
        proactive: dict[str, Any],
        channels: list[dict[str, Any]] | None = None,
        name: str = "sleep",
    ) -> uuid.UUID:
        program = derived_program_id(creator.name, name)
        spec = {
            "title": "Sleep",
            "persona": {"name": "Coach Juniper"},
            "channels": channels or [{"type": "web"}],
            "proactive": proactive,
        }
        await self.tenants.owner(
            creator.creator_id,
            "INSERT INTO programs (program_id, creator_id, name, title, spec)"
            " VALUES ($1, $2, $3, 'Sleep', $4::jsonb)",
            program,
            creator.creator_id,
            name,
            json.dumps(spec),
        )
        creator.programs[name] = program
        return program

    async def update_proactive(
        self, creator: Creator, program: uuid.UUID, proactive: dict[str, Any]
    ) -> None:
        await self.tenants.owner(
            creator.creator_id,
            "UPDATE programs SET spec = jsonb_set(spec, '{proactive}', $2::jsonb)"
            " WHERE program_id = $1",
            program,
            json.dumps(proactive),
        )

    async def end_user(
        self,
        creator: Creator,
        program: uuid.UUID,
        time_zone: str | None = "UTC",
        name: str = "Robin",
    ) -> uuid.UUID:
        """An end user enrolled in ``program``; ``time_zone`` None leaves theirs unset."""
        body: dict[str, Any] = {"program_ids": [str(program)], "display_name": name}
        if time_zone is not None:
            body["time_zone"] = time_zone
        response = await self.client.post("/v1/end-users", json=body, headers=creator.headers)
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["end_user_id"])

    async def wire(self, creator: Creator, program: uuid.UUID, channel: str) -> dict[str, str]:
        """The channel's credentials for the program, as the operator copies them (and the
        stand-in told to accept them); returns them."""
        tag = uuid.uuid4().hex[:8]
        values = {
            "telegram": {"bot-token": f"{tag}:bot-token", "webhook-secret": "s3cret"},
            "sms": {
                "account-sid": f"AC{tag}",
                "auth-token": f"{tag}-auth",
                "from-number": "+15550001111",
            },
            "whatsapp": {
                "access-token": f"EAA{tag}",
                "app-secret": f"{tag}-app",
                "verify-token": "v",
                "phone-number-id": str(int(tag, 16)),
            },
        }[channel]
        key = self.channel_settings.key
        assert key is not None
        ciphertext = Fernet(key.get_secret_value()).encrypt(
            json.dumps(values, sort_keys=True).encode()
        )
        await self.tenants.owner(
            creator.creator_id,
            "INSERT INTO channel_credentials (creator_id, program_id, channel, secret_name,"
            " secret_hash, ciphertext) VALUES ($1, $2, $3, 'creds', 'test', $4)",
            creator.creator_id,
            program,
            channel,
            ciphertext,
        )
        if channel == "telegram":
            self.standins.telegram_tokens.add(values["bot-token"])
        elif channel == "sms":
            self.standins.twilio_accounts[values["account-sid"]] = values["auth-token"]
        else:
            self.standins.whatsapp_phones[values["phone-number-id"]] = values["access-token"]
        return values

    async def wire_telegram(self, creator: Creator, program: uuid.UUID) -> str:
        return (await self.wire(creator, program, "telegram"))["bot-token"]

    async def on_telegram(self, creator: Creator, program: uuid.UUID, end_user: uuid.UUID) -> str:
        return await self.identity(creator, program, end_user, "telegram", str(next(_chat_ids)))

    async def identity(
        self,
        creator: Creator,
        program: uuid.UUID,
        end_user: uuid.UUID,
        channel: str,
        address: str,
        last_inbound_at: datetime | None = None,
    ) -> str:
        """The end user's identity on a channel (as a first inbound message leaves it);
        returns the address replies go to."""
        await self.tenants.owner(
            creator.creator_id,
            "INSERT INTO channel_identities (creator_id, program_id, channel, external_id,"
            " end_user_id, address, last_inbound_at) VALUES ($1, $2, $3, $4, $5, $4, $6)",
            creator.creator_id,
            program,
            channel,
            address,
            end_user,
            last_inbound_at or self.clock.now(),
        )
        return address

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(self.database.superuser_dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def tick(self) -> int:
        """One scheduler pass at the clock's time."""
        return await self.scheduler.poll()

    async def run_until(self, until: datetime, step: timedelta = timedelta(minutes=15)) -> None:
        """Move the clock to ``until`` in steps, the scheduler running at each."""
        await self.tick()
        while self.clock.now() < until:
            self.clock.set(min(until, self.clock.now() + step))
            await self.tick()

    async def deliver(self, seconds: float = 30) -> None:
        async with asyncio.timeout(seconds):
            while True:
                (row,) = await self.rows("SELECT count(*) AS n FROM channel_due")
                if row["n"] == 0:
                    return
                if await self.outbox.poll() == 0:
                    await asyncio.sleep(0.05)

    def received(self, to: str, provider: str = "telegram") -> list[Received]:
        return self.standins.sent(provider, to)

    async def decisions(self, end_user: uuid.UUID) -> list[Any]:
        return await self.rows(
            "SELECT kind, item, outcome, reason, occurrence, occurrence_key, decided_at,"
            " local_day, message_id FROM proactive_decisions WHERE end_user_id = $1"
            " ORDER BY decision_id",
            end_user,
        )

    async def sent_messages(self, end_user: uuid.UUID) -> list[Any]:
        return await self.rows(
            "SELECT body, kind, created_at FROM messages WHERE end_user_id = $1"
            " AND direction = 'out' ORDER BY message_id",
            end_user,
        )


@pytest.fixture
def world(
    tenants: Tenants,
    client: httpx.AsyncClient,
    database: Database,
    clock: FixedClock,
    scheduler: ProactivePoller,
    outbox: ChannelPoller,
    standins: ProviderStandIns,
    channel_settings: ChannelSettings,
) -> World:
    return World(tenants, client, database, clock, scheduler, outbox, standins, channel_settings)
