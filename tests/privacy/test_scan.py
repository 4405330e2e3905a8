"""The scan finds what it is meant to find (so "no trace" means something), the registry
covers every table that names end users, and the runtime role's grants are what erasure
needs and no more."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from coachops_devstack.stack import Stack
from coachops_runtime.privacy.erasure import STEPS
from coachops_runtime.privacy.person import BY_NAME, NOT_PERSONAL, PERSON_TABLES
from coachops_runtime.privacy.scan import Report, main, needles, scan
from tests.conftest import Database


async def test_every_table_naming_end_users_is_in_the_registry(database: Database) -> None:
    connection = await asyncpg.connect(database.superuser_dsn)
    try:
        rows = await connection.fetch(
            "SELECT table_name::text AS name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'end_user_id'"
        )
        existing = {
            r["name"]
            for r in await connection.fetch(
                "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await connection.close()
    named = {r["name"] for r in rows}
    assert named - set(BY_NAME) - NOT_PERSONAL == set()
    # The erasure removes every registered table itself, or by the cascade from end_users.
    erased = {step.name for step in STEPS}
    for entry in PERSON_TABLES:
        if entry.table in existing:
            assert entry.cascade or entry.table in erased, entry.table
    names = [step.name for step in STEPS]
    rows = [step.name for step in STEPS if step.store == "postgresql"]
    others = [n for n in rows if n not in ("audit_log", "end_users")]
    assert names.index("end_users") > max(names.index(n) for n in others)
    assert names[-1] == "audit_log"  # when no request can name the person any more


async def test_runtime_role_may_delete_only_what_erasure_needs(database: Database) -> None:
    connection = await asyncpg.connect(database.runtime_dsn)
    try:
        for table in ("messages", "conversations", "goals", "channel_outbox", "email_outbox"):
            assert await connection.fetchval("SELECT has_table_privilege($1, 'DELETE')", table), (
                table
            )
        for table in ("audit_log", "consent_events", "erasure_tombstones", "privacy_due"):
            assert not await connection.fetchval(
                "SELECT has_table_privilege($1, 'DELETE')", table
            ), table
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("SELECT * FROM privacy_due")
        # Without a pending erasure of that id, the redaction touches nothing.
        assert await connection.fetchval("SELECT redact_erased_end_user($1)", uuid.uuid4()) == 0
    finally:
        await connection.close()


async def test_scan_finds_traces_in_every_kind_of_place(
    database: Database, stack: Stack, redis_prefix: str, tmp_path: Path
) -> None:
    needle = f"needle-{uuid.uuid4().hex[:8]}"
    owner = await asyncpg.connect(database.superuser_dsn)
    try:
        # A table no registry knows: introspection finds its text, jsonb, array and bytea.
        await owner.execute(
            "CREATE TABLE scan_probe (a text, b jsonb, c text[], d bytea, e integer)"
        )
        await owner.execute(
            "INSERT INTO scan_probe VALUES ($1, $2::jsonb, $3, $4, 1)",
            f"x {needle.upper()} y",
            json.dumps({"k": [needle]}),
            ["z", needle],
            f"raw {needle}".encode(),
        )
    finally:
        await owner.close()
    redis = aioredis.Redis.from_url(stack.redis.url)
    try:
        await redis.set(f"{redis_prefix}{needle}", "v")
        await redis.hset(f"{redis_prefix}h", mapping={"f": f"value {needle}"})
        await redis.xadd(f"{redis_prefix}s", {"data": needle})
        await redis.rpush(f"{redis_prefix}l", needle)
        await redis.sadd(f"{redis_prefix}set", needle)
        await redis.zadd(f"{redis_prefix}z", {needle: 1})
    finally:
        await redis.aclose()
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    log.write_text(f"line one\nsomething {needle} happened\n")
    report = await scan(
        [needle, "ab"],
        database_url=database.superuser_dsn,
        redis_url=stack.redis.url,
        logs=[tmp_path / "logs"],
    )
    places = {(t.store, t.location) for t in report.traces}
    assert {
        ("postgresql", "scan_probe.a"),
        ("postgresql", "scan_probe.b"),
        ("postgresql", "scan_probe.c"),
        ("postgresql", "scan_probe.d"),
        ("log", f"{log}:2"),
    } <= places
    redis_places = {loc for store, loc in places if store == "redis"}
    assert f"key {redis_prefix}{needle}" in redis_places
    for kind in ("h", "s", "l", "set", "z"):
        assert f"value of {redis_prefix}{kind}" in redis_places
    assert report.skipped == ["ab"]  # too short to mean anything
    assert not report.clean
    assert report.as_dict()["clean"] is False


def test_needles_and_report() -> None:
    report = Report()
    assert needles(["  Ada@Example.com ", "ada@example.com", "", "abc"], report) == [
        "Ada@Example.com"
    ]
    assert report.skipped == ["abc"]
    assert Report().clean


async def test_admin_command_exit_status(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "worker.log"
    log.write_text("nothing personal here\n")
    texts = tmp_path / "texts.txt"
    texts.write_text("a message nobody wrote\n")
    clean = ["--database-url", database.superuser_dsn, "--logs", str(log)]
    assert await _run([*clean, "--identifier", str(uuid.uuid4()), "--texts-file", str(texts)]) == 0
    assert "0 trace(s)" in capsys.readouterr().out
    assert await _run(["--logs", str(log), "--text", "nothing personal", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["clean"] is False
    assert await _run(["--logs", str(log)]) == 2
    assert await _run(["--end-user", str(uuid.uuid4())]) == 2
    # An end user read from the database first (none here: their id alone is searched).
    assert await _run([*clean, "--end-user", str(uuid.uuid4())]) == 0


async def _run(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)
