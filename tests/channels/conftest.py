"""Fixtures for channels: the runtime's app with channel settings pointing at the provider
stand-ins, the reply poller and the channel outbox poller, programs wired to channels the
way the operator wires them (credentials encrypted into ``channel_credentials``), and one
description per channel of how its webhooks are signed and where its replies land."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr

from coachops_devstack.standins import ProviderStandIns, Received, signers
from coachops_runtime.app import create_app
from coachops_runtime.channels.outbox import ChannelPoller
from coachops_runtime.channels.registry import adapters
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.channels.state import Channels
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from tests.ai.conftest import (
    Coaching,
    ai_settings,
    coaching,
    model_registry,
    ollama,
    ollama_client,
    ollama_stack,
    replies,
    runtime_settings,
)
from tests.ollama.conftest import pulled_chat_model as pulled_chat_model
from tests.runtime.conftest import Creator, client, keys_dir, tenants

__all__ = [
    "ai_settings",
    "client",
    "coaching",
    "keys_dir",
    "model_registry",
    "ollama",
    "ollama_client",
    "ollama_stack",
    "replies",
    "runtime_settings",
    "tenants",
]

CHANNELS = ["telegram", "slack", "sms", "whatsapp"]


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
        send_timeout_seconds=1.0,
        max_attempts=4,
        retry_base_seconds=0.05,
        retry_max_seconds=0.4,
        concurrency=4,
    )


@pytest.fixture
async def app(
    runtime_settings: Settings, channel_settings: ChannelSettings
) -> AsyncIterator[FastAPI]:
    application = create_app(runtime_settings)
    application.state.channels = Channels(channel_settings, adapters(channel_settings))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def outbox(
    runtime_settings: Settings, channel_settings: ChannelSettings
) -> AsyncIterator[ChannelPoller]:
    pool = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 6}))
    poller = ChannelPoller(runtime_settings, pool, channel_settings)
    try:
        yield poller
    finally:
        await poller.close()
        await pool.close()


_numbers = itertools.count(1)


@dataclass
class Wired:
    """A program with one channel wired: its credentials and how to reach it."""

    creator: Creator
    program: uuid.UUID
    channel: str
    values: dict[str, str]

    @property
    def path(self) -> str:
        return f"/v1/hooks/{self.channel}/{self.program}"


def credentials_for(channel: str, tag: str) -> dict[str, str]:
    if channel == "telegram":
        return {"bot-token": f"{tag}:bot-token", "webhook-secret": f"{tag}-hook-secret"}
    if channel == "slack":
        return {"bot-token": f"xoxb-{tag}", "signing-secret": f"{tag}-signing-secret"}
    if channel == "sms":
        return {
            "account-sid": f"AC{tag}",
            "auth-token": f"{tag}-auth-token",
            "from-number": "+15550001111",
        }
    return {
        "access-token": f"EAA{tag}",
        "app-secret": f"{tag}-app-secret",
        "verify-token": f"{tag}-verify",
        "phone-number-id": f"1{abs(hash(tag)) % 10**9}",
    }


def register(standins: ProviderStandIns, channel: str, values: dict[str, str]) -> None:
    if channel == "telegram":
        standins.telegram_tokens.add(values["bot-token"])
    elif channel == "slack":
        standins.slack_tokens.add(values["bot-token"])
    elif channel == "sms":
        standins.twilio_accounts[values["account-sid"]] = values["auth-token"]
    else:
        standins.whatsapp_phones[values["phone-number-id"]] = values["access-token"]


@dataclass
class Sender:
    """An end user on one channel: signs their messages as the provider would."""

    wired: Wired
    identity: str  # chat id, Slack user, phone number
    address: str  # where replies go

    def sign(
        self,
        text: str,
        key: str | None = None,
        *,
        values: dict[str, str] | None = None,
        timestamp: int | None = None,
        url: str = "",
    ) -> tuple[bytes, dict[str, str], str]:
        """(body, headers, provider key) of a message, signed with ``values`` (default:
        the program's own credentials)."""
        creds = values or self.wired.values
        channel = self.wired.channel
        key = key or str(next(_numbers) + 1000)
        if channel == "telegram":
            update = signers.telegram_text(int(key), int(self.identity), text)
            return (*signers.telegram(creds["webhook-secret"], update), key)
        if channel == "slack":
            payload = signers.slack_message(f"Ev{key}", self.identity, self.address, text)
            return (*signers.slack(creds["signing-secret"], payload, timestamp), f"Ev{key}")
        if channel == "sms":
            params = signers.twilio_sms(
                f"SM{key}", self.identity, "+15550001111", text, creds["account-sid"]
            )
            full = url or f"http://runtime{self.wired.path}"
            return (*signers.twilio(creds["auth-token"], full, params), f"SM{key}")
        payload = signers.whatsapp_text(
            f"wamid.{key}", self.identity, text, self.wired.values["phone-number-id"]
        )
        return (*signers.whatsapp(creds["app-secret"], payload), f"wamid.{key}")


class Channeling:
    """Wires programs to channels and talks to them as the providers do."""

    def __init__(
        self,
        coaching: Coaching,
        standins: ProviderStandIns,
        settings: ChannelSettings,
        outbox: ChannelPoller,
    ) -> None:
        self.coaching = coaching
        self.client: httpx.AsyncClient = coaching.client
        self.standins = standins
        self.settings = settings
        self.outbox = outbox

    async def wire(
        self,
        creator: Creator,
        program: uuid.UUID,
        channel: str,
        tag: str | None = None,
    ) -> Wired:
        values = credentials_for(channel, tag or uuid.uuid4().hex[:8])
        key = self.settings.key
        assert key is not None
        ciphertext = Fernet(key.get_secret_value()).encrypt(
            json.dumps(values, sort_keys=True).encode()
        )
        await self.coaching.tenants.owner(
            creator.creator_id,
            "INSERT INTO channel_credentials (creator_id, program_id, channel, secret_name,"
            " secret_hash, ciphertext) VALUES ($1, $2, $3, $4, 'test', $5)",
            creator.creator_id,
            program,
            channel,
            f"{channel}-secret",
            ciphertext,
        )
        register(self.standins, channel, values)
        return Wired(creator, program, channel, values)

    async def setup(self, channel: str, name: str | None = None, **channel_entry: Any) -> Wired:
        creator = await self.coaching.creator(name or f"ch{uuid.uuid4().hex[:8]}")
        spec = self.coaching.spec()
        spec["channels"] = [{"type": channel, "secretRef": f"{channel}-secret", **channel_entry}]
        program = await self.coaching.program(creator, "sleep", spec)
        return await self.wire(creator, program, channel)

    def sender(self, wired: Wired, n: int = 1) -> Sender:
        if wired.channel == "telegram":
            return Sender(wired, str(700000 + n), str(700000 + n))
        if wired.channel == "slack":
            return Sender(wired, f"U{n:06d}", f"D{n:06d}")
        if wired.channel == "sms":
            return Sender(wired, f"+1555100{n:04d}", f"+1555100{n:04d}")
        return Sender(wired, f"4915100{n:04d}", f"4915100{n:04d}")

    async def post(self, wired: Wired, signed: tuple[bytes, dict[str, str], str]) -> httpx.Response:
        body, headers, _ = signed
        return await self.client.post(wired.path, content=body, headers=headers)

    async def say(self, sender: Sender, text: str) -> str:
        signed = sender.sign(text)
        response = await self.post(sender.wired, signed)
        assert response.status_code == 200, response.text
        return signed[2]

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        return await self.coaching.superuser(sql, *args)

    async def count(self, table: str, program: uuid.UUID) -> int:
        sql = f"SELECT count(*) AS n FROM {table} WHERE program_id = $1"
        (row,) = await self.rows(sql, program)
        return int(row["n"])

    async def deliver(self, seconds: float = 30) -> None:
        """Poll the outbox until no delivery is pending (backoffs are waited out)."""
        async with asyncio.timeout(seconds):
            while True:
                (row,) = await self.rows("SELECT count(*) AS n FROM channel_due")
                if row["n"] == 0:
                    return
                if await self.outbox.poll() == 0:
                    await asyncio.sleep(0.05)

    def received(self, sender: Sender) -> list[Received]:
        return self.standins.sent(sender.wired.channel, sender.address)

    async def conversation(self, sender: Sender) -> uuid.UUID:
        rows = await self.rows(
            "SELECT v.conversation_id FROM conversations v JOIN channel_identities i"
            " ON i.end_user_id = v.end_user_id AND i.program_id = v.program_id"
            " AND i.channel = v.channel WHERE i.external_id = $1 AND i.program_id = $2",
            sender.identity,
            sender.wired.program,
        )
        return uuid.UUID(str(rows[0]["conversation_id"]))

    async def creator_reply(self, sender: Sender, text: str) -> None:
        conversation = await self.conversation(sender)
        response = await self.client.post(
            f"/v1/conversations/{conversation}/messages",
            json={"body": text},
            headers=sender.wired.creator.headers,
        )
        assert response.status_code == 201, response.text


@pytest.fixture
def channeling(
    coaching: Coaching,
    standins: ProviderStandIns,
    channel_settings: ChannelSettings,
    outbox: ChannelPoller,
) -> Channeling:
    return Channeling(coaching, standins, channel_settings, outbox)
