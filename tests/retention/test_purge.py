"""The retention purge deletes exactly the messages (and finished deliveries) of whole UTC
days older than a program's ``spec.retention.messageDays``, in batches, and the daily
analytics of the purged days stay as they were."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from coachops_crds.models import CoachingProgramSpec
from coachops_crds.schema import program_crd
from coachops_runtime.kit.db import Session, create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.retention.purge import RetentionPoller, cutoff
from coachops_runtime.retention.repository import RetentionRepository
from coachops_runtime.retention.settings import RetentionSettings
from tests.conftest import Database
from tests.runtime.conftest import Creator, Tenants

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)


@pytest.fixture
async def pool(runtime_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 2}))
    try:
        yield pool
    finally:
        await pool.close()


def _spec(days: int | None) -> str:
    spec: dict[str, Any] = {"title": "Sleep", "persona": {"name": "Coach"}}
    if days is not None:
        spec["retention"] = {"messageDays": days}
    return json.dumps(spec)


async def _program(tenants: Tenants, creator: Creator, name: str, days: int | None) -> uuid.UUID:
    program = uuid.uuid4()
    await tenants.owner(
        creator.creator_id,
        "INSERT INTO programs (program_id, creator_id, name, title, spec)"
        " VALUES ($1, $2, $3, 'Sleep', $4::jsonb)",
        program,
        creator.creator_id,
        name,
        _spec(days),
    )
    return program


async def _history(tenants: Tenants, creator: Creator, program: uuid.UUID) -> None:
    """One conversation on SMS with a message a day (in at 09:00, out at 09:01) for 40
    days before NOW, a check-in at 23:00 answered at 00:30 the next day, and a sent
    delivery per outbound message (the trigger writes them; marked sent here)."""
    (end_user,) = await tenants.owner(
        creator.creator_id,
        "INSERT INTO end_users (creator_id, display_name) VALUES ($1, 'R') RETURNING end_user_id",
        creator.creator_id,
    )
    (conversation,) = await tenants.owner(
        creator.creator_id,
        "INSERT INTO conversations (creator_id, program_id, end_user_id, channel)"
        " VALUES ($1, $2, $3, 'sms') RETURNING conversation_id",
        creator.creator_id,
        program,
        end_user["end_user_id"],
    )
    rows: list[tuple[str, str, str, datetime]] = []
    for days_ago in range(40, -1, -1):
        day = (NOW - timedelta(days=days_ago)).replace(hour=9, minute=0)
        rows.append(("in", "end_user", "chat", day))
        rows.append(("out", "ai", "chat", day + timedelta(minutes=1)))
    rows.append(("out", "system", "check_in", NOW.replace(hour=23, minute=0) - timedelta(days=35)))
    rows.append(("in", "end_user", "chat", NOW.replace(hour=0, minute=30) - timedelta(days=34)))
    await tenants.owner(
        creator.creator_id,
        "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id, direction,"
        " author, kind, body, created_at)"
        " SELECT $1, $2, $3, $4, d, a, k, 'text', t"
        " FROM unnest($5::text[], $6::text[], $7::text[], $8::timestamptz[]) AS r(d, a, k, t)",
        creator.creator_id,
        conversation["conversation_id"],
        program,
        end_user["end_user_id"],
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )
    await tenants.owner(
        creator.creator_id,
        "UPDATE channel_outbox o SET state = 'sent', created_at = m.created_at"
        " FROM messages m WHERE m.message_id = o.message_id",
    )


async def _daily(client: httpx.AsyncClient, creator: Creator) -> list[dict[str, Any]]:
    start, stop = (NOW - timedelta(days=45)).date(), NOW.date()
    response = await client.get(
        f"/v1/analytics/daily?from={start}&to={stop}", headers=creator.headers
    )
    assert response.status_code == 200, response.text
    days: list[dict[str, Any]] = response.json()
    return days


async def _times(superuser: asyncpg.Connection, table: str, program: uuid.UUID) -> list[datetime]:
    rows = await superuser.fetch(
        f"SELECT created_at FROM {table} WHERE program_id = $1 ORDER BY created_at", program
    )
    return [row["created_at"] for row in rows]


def test_the_cutoff_is_midnight_utc_message_days_before_today() -> None:
    assert cutoff(NOW, 30) == datetime(2026, 5, 16, tzinfo=UTC)
    # 18:00 on the 15th in Los Angeles is already the 16th in UTC: days are UTC days.
    evening = datetime(2026, 6, 15, 18, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert cutoff(evening, 1) == datetime(2026, 6, 15, tzinfo=UTC)


async def test_purge_removes_only_what_is_older_than_the_limit_and_keeps_analytics(
    client: httpx.AsyncClient, tenants: Tenants, database: Database, pool: asyncpg.Pool
) -> None:
    creator = await tenants.signed_up("keeper")
    other = await tenants.signed_up("forever")
    limited = await _program(tenants, creator, "limited", 30)
    unlimited = await _program(tenants, creator, "unlimited", None)
    elsewhere = await _program(tenants, other, "elsewhere", 0)
    for owner, program in ((creator, limited), (creator, unlimited), (other, elsewhere)):
        await _history(tenants, owner, program)
    before = await _daily(client, creator)
    assert any(day["check_ins_answered"] == 1 for day in before)

    superuser = await asyncpg.connect(database.superuser_dsn)
    try:
        kept_before = {
            p: await _times(superuser, "messages", p) for p in (limited, unlimited, elsewhere)
        }
        poller = RetentionPoller(pool, RetentionSettings(batch_size=7), clock=lambda: NOW)
        deleted = await poller.poll()
        limit = cutoff(NOW, 30)
        remaining = await _times(superuser, "messages", limited)
        assert remaining == [t for t in kept_before[limited] if t >= limit]
        assert min(remaining) == limit + timedelta(hours=9)  # the cutoff's own day stays
        assert deleted == poller.stats.messages + poller.stats.deliveries
        assert poller.stats.messages == len(kept_before[limited]) - len(remaining)
        # Batches of 7: several transactions, none of them holding the whole purge.
        assert poller.stats.transactions > poller.stats.messages // 7
        assert all(t >= limit for t in await _times(superuser, "channel_outbox", limited))
        assert poller.stats.deliveries > 0
        purged = poller.stats.messages
        # Other programs and tenants: untouched.
        for program in (unlimited, elsewhere):
            assert await _times(superuser, "messages", program) == kept_before[program]
        # The same figures for every day, purged or not.
        assert await _daily(client, creator) == before
        # Nothing left to do: a second run deletes nothing, within the interval no run.
        assert await poller.run() == 0
        assert await poller.poll() == 0
    finally:
        await superuser.close()

    response = await client.get("/v1/audit-log?action=retention.purge", headers=creator.headers)
    (entry,) = response.json()["items"]
    assert entry["actor_kind"] == "system"
    assert entry["target_id"] == str(limited)
    assert entry["details"]["messages"] == purged
    other_log = await client.get("/v1/audit-log?action=retention.purge", headers=other.headers)
    assert other_log.json()["items"] == []


async def test_the_limit_follows_the_program_spec(
    tenants: Tenants, database: Database, pool: asyncpg.Pool
) -> None:
    creator = await tenants.provision("switch")
    program = await _program(tenants, creator, "sleep", 30)
    listed = "SELECT program_id, message_days FROM retention_programs()"
    runtime = await asyncpg.connect(database.runtime_dsn)
    try:
        assert [tuple(r) for r in await runtime.fetch(listed)] == [(program, 30)]
        await tenants.owner(
            creator.creator_id,
            "UPDATE programs SET spec = $2::jsonb WHERE program_id = $1",
            program,
            _spec(0),
        )
        assert await runtime.fetch(listed) == []
        await tenants.owner(
            creator.creator_id,
            "UPDATE programs SET spec = $2::jsonb WHERE program_id = $1",
            program,
            _spec(7),
        )
        assert [tuple(r) for r in await runtime.fetch(listed)] == [(program, 7)]
        # A deleted program (reclaimPolicy Retain) is not purged.
        await tenants.owner(
            creator.creator_id,
            "UPDATE programs SET deleted_at = now() WHERE program_id = $1",
            program,
        )
        assert await runtime.fetch(listed) == []
        # The directory itself is not readable by the runtime.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.fetch("SELECT * FROM retention_programs")
    finally:
        await runtime.close()


async def test_a_purge_stopped_midway_resumes_without_counting_again(
    client: httpx.AsyncClient, tenants: Tenants, pool: asyncpg.Pool
) -> None:
    creator = await tenants.signed_up("resumer")
    program = await _program(tenants, creator, "sleep", 30)
    await _history(tenants, creator, program)
    before = await _daily(client, creator)
    limit = cutoff(NOW, 30)
    # What a worker killed after its first batch leaves: the days kept, a few rows gone.
    async with pool.acquire() as connection:
        session = Session(connection)
        await session.set_tenant(creator.creator_id)
        repo = RetentionRepository(session)
        kept = await repo.keep_days(creator.creator_id, program, limit)
        assert await repo.delete_messages(creator.creator_id, program, limit, 5) == 5
        await session.finish(commit=True)
    assert kept == 10  # the 10 UTC days before the cutoff, each stored once

    poller = RetentionPoller(pool, RetentionSettings(batch_size=50), clock=lambda: NOW)
    await poller.run()
    assert poller.stats.days_kept == 0  # nothing counted again from the thinned days
    assert poller.stats.messages > 0
    assert await _daily(client, creator) == before


def test_the_spec_field_validates_and_is_what_the_operator_copies() -> None:
    """The operator stores ``CoachingProgramSpec.model_dump(by_alias=True, mode="json")``
    in the program's row: the trigger reads ``retention.messageDays`` from that."""
    base = {"title": "Sleep", "persona": {"name": "Coach"}}
    copied = CoachingProgramSpec.model_validate({**base, "retention": {"messageDays": 365}})
    assert copied.model_dump(by_alias=True, mode="json")["retention"] == {"messageDays": 365}
    default = CoachingProgramSpec.model_validate(base).model_dump(by_alias=True, mode="json")
    assert default["retention"] == {"messageDays": 0}
    for bad in (-1, 36_501, "a year"):
        with pytest.raises(ValidationError):
            CoachingProgramSpec.model_validate({**base, "retention": {"messageDays": bad}})
    schema = program_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    field = schema["properties"]["spec"]["properties"]["retention"]["properties"]["messageDays"]
    assert (field["minimum"], field["maximum"], field["default"]) == (0, 36_500, 0)
