"""Fixtures for exports and erasures: the runtime's app on a real PostgreSQL, Redis and
ChromaDB, the worker's privacy poller, and people seeded with something in every store.

A person is seeded the way the runtime would leave them: invited and enrolled through the
API (an invitation e-mail, consents, a goal, a magic link), conversations on the web and
on two provider channels (Telegram and SMS, with channel identities; their outbound
messages queue channel deliveries through the trigger), messages with citations, a reply
job, a memory summary, proactive history, a rate-limit key and a reply stream in Redis, and
a vector tied to them in Chroma. Rows the API cannot write (channel traffic, the worker's
output) are written as the schema owner under the tenant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from coachops_crds.constants import CHROMA_DATABASE, chroma_tenant, tenant_redis_prefix
from coachops_devstack.stack import Stack
from coachops_operator.vectors import VectorStore as OperatorVectors
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.vectors import VectorStore
from coachops_runtime.privacy.settings import PrivacySettings
from coachops_runtime.privacy.worker import PrivacyPoller
from tests.conftest import Database
from tests.runtime.conftest import (
    Creator,
    Tenants,
    app,
    client,
    keys_dir,
    runtime_settings,
    tenants,
)

__all__ = ["app", "client", "keys_dir", "runtime_settings", "tenants"]


@dataclass
class Person:
    creator: Creator
    end_user_id: uuid.UUID
    email: str
    tag: str
    program: uuid.UUID
    conversations: list[uuid.UUID] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    goal_ids: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    reply_jobs: list[uuid.UUID] = field(default_factory=list)
    token: str = ""

    @property
    def identifiers(self) -> list[str]:
        return [
            str(self.end_user_id),
            self.email,
            f"ext-{self.tag}",
            f"Person {self.tag}",
            *self.identities,
        ]

    @property
    def me(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class People:
    def __init__(
        self,
        client: httpx.AsyncClient,
        tenants: Tenants,
        database: Database,
        redis_url: str,
        chroma_url: str,
    ) -> None:
        self.client = client
        self.tenants = tenants
        self.database = database
        self.redis_url = redis_url
        self.chroma_url = chroma_url

    async def creator(self, name: str) -> Creator:
        creator = await self.tenants.signed_up(name)
        await self.tenants.add_program(creator, "sleep")
        store = OperatorVectors(self.chroma_url)
        try:
            await store.ensure(chroma_tenant(name), CHROMA_DATABASE)
        finally:
            await store.close()
        return creator

    async def superuser(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database.superuser_dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def seed(self, creator: Creator, tag: str, *, messages: int = 3) -> Person:
        program = creator.programs["sleep"]
        email = f"person-{tag}@example.com"
        response = await self.client.post(
            "/v1/end-users",
            json={
                "email": email,
                "external_id": f"ext-{tag}",
                "display_name": f"Person {tag}",
                "program_ids": [str(program)],
            },
            headers=creator.headers,
        )
        assert response.status_code == 201, response.text
        person = Person(creator, uuid.UUID(response.json()["end_user_id"]), email, tag, program)
        user = f"/v1/end-users/{person.end_user_id}"
        for channel, address in (("telegram", f"tg-{tag}"), ("sms", f"+4930{tag}")):
            response = await self.client.put(
                f"{user}/consents/{channel}",
                json={"granted": True, "address": address},
                headers=creator.headers,
            )
            assert response.status_code == 200, response.text
        response = await self.client.post(
            f"{user}/goals",
            json={"program_id": str(program), "title": f"Goal of {tag} to sleep eight hours"},
            headers=creator.headers,
        )
        assert response.status_code == 201, response.text
        person.goal_ids.append(response.json()["goal_id"])
        person.texts.append(f"Goal of {tag} to sleep eight hours")
        response = await self.client.post(
            f"{user}/magic-links", json={"program_id": str(program)}, headers=creator.headers
        )
        assert response.status_code == 202, response.text
        response = await self.client.post(
            "/v1/end-user-tokens",
            json={"end_user_id": str(person.end_user_id), "program_id": str(program)},
            headers=creator.headers,
        )
        assert response.status_code == 201, response.text
        person.token = response.json()["access_token"]
        # Its rate-limit key in Redis.
        assert (await self.client.get("/v1/me", headers=person.me)).status_code == 200
        await self._channels(person, messages)
        await self._stores(person)
        return person

    async def _channels(self, person: Person, messages: int) -> None:
        creator, tag = person.creator, person.tag
        owner = self.tenants.owner
        cid = creator.creator_id
        for channel, external in (("telegram", f"7000{tag}"), ("sms", f"+1555{tag}")):
            person.identities.append(external)
            await owner(
                cid,
                "INSERT INTO channel_identities (creator_id, program_id, channel, external_id,"
                " end_user_id, address) VALUES ($1, $2, $3, $4, $5, $4)",
                cid,
                person.program,
                channel,
                external,
                person.end_user_id,
            )
            (row,) = await owner(
                cid,
                "INSERT INTO conversations (creator_id, program_id, end_user_id, channel)"
                " VALUES ($1, $2, $3, $4) RETURNING conversation_id",
                cid,
                person.program,
                person.end_user_id,
                channel,
            )
            conversation = row["conversation_id"]
            person.conversations.append(conversation)
            texts = [f"{tag} on {channel} says number {n} about sleep" for n in range(messages)]
            rows = await owner(
                cid,
                "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
                " direction, author, body)"
                " SELECT $1, $2, $3, $4, 'in', 'end_user', body FROM unnest($5::text[]) body"
                " RETURNING message_id",
                cid,
                conversation,
                person.program,
                person.end_user_id,
                texts,
            )
            inbound = [r["message_id"] for r in rows]
            person.message_ids += inbound
            person.texts += texts
            citations = [{"number": 1, "source": "sleep.md", "snippet": "Sleep hygiene"}]
            (reply,) = await owner(
                cid,
                "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
                " direction, author, body, reply_to, citations, model)"
                " VALUES ($1, $2, $3, $4, 'out', 'ai', $5, $6, $7::jsonb, 'tiny')"
                " RETURNING message_id",
                cid,
                conversation,
                person.program,
                person.end_user_id,
                f"Reply to {tag} on {channel}",
                inbound[-1],
                json.dumps(citations),
            )
            person.message_ids.append(reply["message_id"])
            person.texts.append(f"Reply to {tag} on {channel}")
            (job,) = await owner(
                cid,
                "INSERT INTO reply_jobs (creator_id, program_id, conversation_id, end_user_id,"
                " message_id, state, reply_message_id, prompt) VALUES ($1, $2, $3, $4, $5,"
                " 'done', $6, $7::jsonb) RETURNING job_id",
                cid,
                person.program,
                conversation,
                person.end_user_id,
                inbound[-1],
                reply["message_id"],
                json.dumps({"system": f"You coach Person {tag}"}),
            )
            person.reply_jobs.append(job["job_id"])
            await owner(
                cid,
                "INSERT INTO conversation_memory (conversation_id, creator_id, summary)"
                " VALUES ($1, $2, $3)",
                conversation,
                cid,
                f"Memory: {tag} sleeps badly on {channel}",
            )
        person.texts.append(f"Memory: {tag} sleeps badly on telegram")
        # A scheduled check-in (the enrolment trigger plans those of a program's spec).
        await owner(
            cid,
            "INSERT INTO proactive_schedules (creator_id, program_id, end_user_id, kind, item,"
            " due_at) VALUES ($1, $2, $3, 'check_in', 'evening', now() + interval '1 day')"
            " ON CONFLICT DO NOTHING",
            cid,
            person.program,
            person.end_user_id,
        )
        await owner(
            cid,
            "INSERT INTO proactive_decisions (creator_id, program_id, end_user_id, kind, item,"
            " outcome, reason, local_day, decided_at)"
            " VALUES ($1, $2, $3, 'check_in', 'morning', 'skipped', 'quiet hours',"
            " current_date, now())",
            cid,
            person.program,
            person.end_user_id,
        )

    async def _stores(self, person: Person) -> None:
        redis = aioredis.Redis.from_url(self.redis_url)
        try:
            prefix = tenant_redis_prefix(person.creator.name)
            key = f"{prefix}reply:{person.reply_jobs[0]}"
            await redis.xadd(key, {"event": "token", "data": f"Reply to {person.tag} on telegram"})
            # A throttled end user's rate-limit key (the runtime's own expires in < 1 s).
            await redis.set(f"{prefix}rl:end-user:{person.end_user_id}", "1", px=60_000)
        finally:
            await redis.aclose()
        store = VectorStore(self.chroma_url)
        try:
            await store.collection(person.creator.name, person.program).upsert(
                [f"memory-{person.end_user_id}"],
                [[0.1, 0.2, 0.3]],
                [f"Vector memory: {person.tag} wakes at night"],
                [{"end_user_id": str(person.end_user_id), "kind": "memory"}],
            )
        finally:
            await store.close()
        person.texts.append(f"Vector memory: {person.tag} wakes at night")


@pytest.fixture
def people(client: httpx.AsyncClient, tenants: Tenants, database: Database, stack: Stack) -> People:
    return People(client, tenants, database, stack.redis.url, stack.chroma.url)


@pytest.fixture
def privacy_settings() -> PrivacySettings:
    return PrivacySettings(batch_rows=4, retry_seconds=0.1)


@pytest.fixture
async def poller(
    runtime_settings: Settings, stack: Stack, privacy_settings: PrivacySettings
) -> AsyncIterator[PrivacyPoller]:
    settings = runtime_settings.model_copy(update={"chroma_url": stack.chroma.url})
    pool = await create_pool(settings.model_copy(update={"db_pool_size": 4}))
    worker = PrivacyPoller(settings, pool, privacy_settings)
    try:
        yield worker
    finally:
        await worker.close()
        await pool.close()


async def drain(poller: PrivacyPoller) -> int:
    """Run due jobs until none is left; how many ran."""
    ran = 0
    while await poller.poll():
        ran += 1
        assert ran < 100
    return ran
