"""Erasure, then the verification scan: no trace of the person in PostgreSQL, Redis,
ChromaDB or the stack's logs; everyone else's rows unchanged, byte for byte."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from coachops_devstack.stack import Stack
from coachops_runtime.privacy.scan import Report, person_needles, scan
from coachops_runtime.privacy.worker import PrivacyPoller
from tests.privacy.conftest import People, Person, drain

_TABLES = """
    SELECT table_name::text AS name FROM information_schema.columns
    WHERE table_schema = 'public' AND column_name = 'creator_id'
    ORDER BY 1
"""


async def snapshot(people: People, stranger: uuid.UUID, neighbour: Person) -> dict[str, Any]:
    """Per table: count and checksum of another tenant's rows and of a neighbour's rows."""
    pattern = "|".join(re.escape(str(v)) for v in [neighbour.end_user_id, *neighbour.conversations])
    figures: dict[str, Any] = {}
    connection = await asyncpg.connect(people.database.superuser_dsn)
    try:
        for row in await connection.fetch(_TABLES):
            table = row["name"]
            for label, where, arg in (
                ("stranger", "t.creator_id = $1", stranger),
                ("neighbour", "t::text ~ $1", pattern),
            ):
                found = await connection.fetchrow(
                    "SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|'"
                    f" ORDER BY t::text), '')) AS sum FROM {table} t WHERE {where}",
                    arg,
                )
                assert found is not None
                figures[f"{table}/{label}"] = (found["n"], found["sum"])
    finally:
        await connection.close()
    return figures


async def needles_of(people: People, person: Person) -> tuple[list[str], list[str]]:
    ids, texts = await person_needles(people.database.superuser_dsn, person.end_user_id)
    ids += person.identifiers + [str(c) for c in person.conversations]
    return ids, texts + person.texts


async def test_erasure_leaves_no_trace_and_nothing_else_changes(
    people: People, poller: PrivacyPoller, stack: Stack
) -> None:
    client: httpx.AsyncClient = people.client
    creator = await people.creator("eraser")
    bystanders = await people.creator("bystanders")
    person = await people.seed(creator, "g7")
    neighbour = await people.seed(creator, "h8")
    await people.seed(bystanders, "i9")
    user = f"/v1/end-users/{person.end_user_id}"
    # An archive of the person waits to be downloaded: it goes with them.
    assert (await client.post(f"{user}/exports", headers=creator.headers)).status_code == 202
    await drain(poller)

    ids, texts = await needles_of(people, person)

    async def scan_stores(logs: Sequence[Path] = ()) -> Report:
        return await scan(
            ids,
            texts,
            database_url=people.database.superuser_dsn,
            redis_url=stack.redis.url,
            chroma_url=stack.chroma.url,
            logs=logs,
        )

    before = await scan_stores()
    assert {t.store for t in before.traces} == {"postgresql", "redis", "chroma"}
    assert {t.location.split(".")[0] for t in before.traces if t.store == "postgresql"} >= {
        "end_users",
        "messages",
        "conversations",
        "goals",
        "channel_identities",
        "channel_outbox",
        "email_outbox",
        "conversation_memory",
        "consent_events",
        "export_jobs",
    }
    kept = await snapshot(people, bystanders.creator_id, neighbour)
    analytics = await client.get("/v1/analytics/daily", headers=creator.headers)
    assert analytics.status_code == 200

    response = await client.delete(user, headers=creator.headers)
    assert response.status_code == 202, response.text
    erasure = response.json()
    assert response.headers["Location"] == f"/v1/erasures/{erasure['erasure_id']}"
    assert erasure["state"] == "pending"
    # Asked again before it ran: the same erasure.
    again = await client.delete(user, headers=creator.headers)
    assert again.json()["erasure_id"] == erasure["erasure_id"]

    assert await drain(poller) == 1
    status = (await client.get(response.headers["Location"], headers=creator.headers)).json()
    assert status["state"] == "done"
    assert status["request_id"] == response.headers["X-Request-ID"]
    assert status["requested_by"].startswith("account:")
    removed = {k: v["removed"] for k, v in status["steps"].items()}
    assert removed["messages"] == len(person.message_ids)
    assert removed["conversations"] == 2
    assert removed["redis"] == 2  # the rate-limit key and the reply stream
    assert removed["chroma"] == 1
    assert removed["end_users"] == 1
    assert removed["proactive_schedules"] >= 1  # the scheduled check-in
    assert removed["audit_log"] >= 1  # the consent and goal changes named the person
    assert str(person.end_user_id) not in str(status)
    # Gone: the end user is 404 for the creator and for their own token.
    assert (await client.delete(user, headers=creator.headers)).status_code == 404
    assert (await client.get(user, headers=creator.headers)).status_code == 404

    logs = sorted(stack.workdir.rglob("*.log"))
    after = await scan_stores(logs)
    assert after.traces == [], after.traces
    assert after.searched["postgresql"] > 50
    assert after.searched["log"] >= 1
    assert await snapshot(people, bystanders.creator_id, neighbour) == kept
    # The creator's analytics do not change their past.
    again = await client.get("/v1/analytics/daily", headers=creator.headers)
    assert again.json() == analytics.json()
    assert sum(d["active_users"] for d in again.json()) == 2
    # The counts the analytics are made of survive, without the person.
    rows = await people.superuser(
        "SELECT sum(messages_in) AS i, sum(messages_out) AS o, sum(active_users) AS u"
        " FROM erased_activity WHERE creator_id = $1",
        creator.creator_id,
    )
    assert (rows[0]["i"], rows[0]["o"], rows[0]["u"]) == (6, 2, 1)


async def test_end_user_erases_themself_after_confirming(
    people: People, poller: PrivacyPoller
) -> None:
    client = people.client
    creator = await people.creator("selferase")
    person = await people.seed(creator, "j1", messages=1)
    neighbour = await people.seed(creator, "k2", messages=1)
    missing = await client.delete("/v1/me", headers=person.me)
    assert missing.status_code == 422
    refused = await client.delete("/v1/me?confirmation=guess", headers=person.me)
    assert refused.status_code == 403
    asked = await client.post("/v1/me/erasure-confirmation", headers=person.me)
    assert asked.status_code == 201, asked.text
    code = asked.json()["confirmation"]
    # Another end user's code does nothing for this one, and nothing is queued yet.
    assert (
        await client.delete(f"/v1/me?confirmation={code}", headers=neighbour.me)
    ).status_code == 403
    assert await drain(poller) == 0
    done = await client.delete(f"/v1/me?confirmation={code}", headers=person.me)
    assert done.status_code == 202, done.text
    assert await drain(poller) == 1
    status = await client.get(f"/v1/erasures/{done.json()['erasure_id']}", headers=creator.headers)
    assert status.json()["state"] == "done"
    assert status.json()["requested_by"] == "end_user"
    assert (await client.get("/v1/me", headers=person.me)).status_code in (401, 404)
    assert (await client.get("/v1/me", headers=neighbour.me)).status_code == 200
    # The code was single use.
    assert (await client.delete(f"/v1/me?confirmation={code}", headers=person.me)).status_code in (
        401,
        403,
        404,
    )
