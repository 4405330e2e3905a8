"""``respond``'s side effects under row-level security: the AI paused, the alert queued,
one safety event per message, listed for the creator and for no one else."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from coachops_crds.constants import program_id as derived_program_id
from coachops_runtime.ai.safety import ProgramSafety, SafetyReply, Verdict, respond
from coachops_runtime.kit.db import Session
from coachops_runtime.mail.templates import render
from tests.conftest import Database
from tests.runtime.conftest import Creator, Tenants

CRISIS = Verdict("crisis", "self_harm", layer="embedding", score=0.8)
BODY = "a message whose text must never leave the conversation"


@dataclass
class Case:
    creator: Creator
    program: uuid.UUID
    program_name: str
    spec: dict[str, Any]
    end_user: uuid.UUID
    conversation: uuid.UUID
    message: int

    @property
    def safety(self) -> ProgramSafety:
        return ProgramSafety.from_spec(self.program_name, self.spec)


async def _case(
    client: httpx.AsyncClient, tenants: Tenants, name: str, safety: dict[str, Any]
) -> Case:
    creator = await tenants.signed_up(name)
    program_name = f"{name}-prog"
    program = derived_program_id(name, program_name)
    spec = {"title": "P", "persona": {"name": "Coach", "language": "en"}, "safety": safety}
    await tenants.owner(
        creator.creator_id,
        "INSERT INTO programs (program_id, creator_id, name, title, spec)"
        " VALUES ($1, $2, $3, 'P', $4::jsonb)",
        program,
        creator.creator_id,
        program_name,
        json.dumps(spec),
    )
    user = await client.post(
        "/v1/end-users",
        json={"email": f"u@{name}.example.com", "program_ids": [str(program)]},
        headers=creator.headers,
    )
    end_user = user.json()["end_user_id"]
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user, "program_id": str(program)},
        headers=creator.headers,
    )
    sent = await client.post(
        "/v1/me/messages",
        json={"body": BODY},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert sent.status_code == 202, sent.text
    message = sent.json()["message"]
    return Case(
        creator,
        program,
        program_name,
        spec,
        uuid.UUID(end_user),
        uuid.UUID(message["conversation_id"]),
        message["message_id"],
    )


@pytest.fixture
async def connection(database: Database) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.runtime_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _respond(
    connection: asyncpg.Connection, case: Case, verdict: Verdict, tenant: uuid.UUID | None = None
) -> SafetyReply:
    """respond() in one transaction bound to ``tenant`` (the case's own by default)."""
    session = Session(connection)
    await session.set_tenant(tenant or case.creator.creator_id)
    try:
        reply = await respond(
            session,
            verdict,
            case.safety,
            creator_id=case.creator.creator_id,
            program_id=case.program,
            end_user_id=case.end_user,
            conversation_id=case.conversation,
            message_id=case.message,
        )
    except BaseException:
        await session.finish(commit=False)
        raise
    await session.finish(commit=True)
    return reply


async def test_crisis_pauses_alerts_and_records_once(
    client: httpx.AsyncClient, tenants: Tenants, connection: asyncpg.Connection
) -> None:
    case = await _case(
        client,
        tenants,
        "carer",
        {
            "escalationEmail": "coach@carer.example.com",
            "resources": [{"name": "Carer Line", "contact": "0800 123", "region": "Atlantis"}],
        },
    )
    reply = await _respond(connection, case, CRISIS)
    assert reply.recorded
    assert reply.ai_paused
    assert reply.alert_queued
    assert "- Carer Line (Atlantis): 0800 123" in reply.text
    assert "findahelpline" not in reply.text  # the program's resources replace the defaults

    conversation = await client.get(
        f"/v1/conversations/{case.conversation}", headers=case.creator.headers
    )
    assert conversation.json()["ai_paused"] is True

    events = await client.get("/v1/safety-events", headers=case.creator.headers)
    assert events.status_code == 200
    (event,) = events.json()["items"]
    assert event["event_id"] == str(reply.event_id)
    assert (event["kind"], event["category"], event["layer"]) == (
        "crisis",
        "self_harm",
        "embedding",
    )
    assert event["message_id"] == case.message
    assert event["conversation_id"] == str(case.conversation)
    assert BODY not in events.text

    outbox = await tenants.owner(
        case.creator.creator_id,
        "SELECT to_address, payload FROM email_outbox WHERE template = 'safety_alert'",
    )
    assert [row["to_address"] for row in outbox] == ["coach@carer.example.com"]
    payload = json.loads(outbox[0]["payload"])
    assert payload["event_id"] == str(reply.event_id)
    assert BODY not in outbox[0]["payload"]
    mail = render("safety_alert", payload, "https://hub.example.com")
    assert f"https://hub.example.com/conversations/{case.conversation}" in mail.text
    assert "self-harm" in mail.text
    assert BODY not in mail.text + mail.html

    # The job runs again (a retry after a crash): nothing twice.
    again = await _respond(connection, case, CRISIS)
    assert not again.recorded
    assert again.event_id == reply.event_id
    count = await tenants.owner(
        case.creator.creator_id,
        "SELECT (SELECT count(*) FROM email_outbox WHERE template = 'safety_alert') AS mails,"
        " (SELECT count(*) FROM safety_events) AS events",
    )
    assert (count[0]["mails"], count[0]["events"]) == (1, 1)


async def test_blocked_topic_refuses_without_pausing_or_mailing(
    client: httpx.AsyncClient, tenants: Tenants, connection: asyncpg.Connection
) -> None:
    case = await _case(
        client,
        tenants,
        "strict",
        {"escalationEmail": "coach@strict.example.com", "blockedTopics": ["politics"]},
    )
    reply = await _respond(connection, case, Verdict("blocked_topic", topic="politics"))
    assert "politics" in reply.text
    assert not reply.ai_paused
    assert not reply.alert_queued
    conversation = await client.get(
        f"/v1/conversations/{case.conversation}", headers=case.creator.headers
    )
    assert conversation.json()["ai_paused"] is False
    events = await client.get(
        f"/v1/safety-events?conversation_id={case.conversation}", headers=case.creator.headers
    )
    assert [(e["kind"], e["topic"]) for e in events.json()["items"]] == [
        ("blocked_topic", "politics")
    ]
    mails = await tenants.owner(
        case.creator.creator_id, "SELECT 1 FROM email_outbox WHERE template = 'safety_alert'"
    )
    assert mails == []


async def test_defaults_without_an_escalation_address(
    client: httpx.AsyncClient, tenants: Tenants, connection: asyncpg.Connection
) -> None:
    case = await _case(client, tenants, "plain", {})
    case.spec["persona"]["language"] = "de-AT"
    reply = await _respond(connection, case, Verdict("crisis", "abuse", layer="pattern"))
    assert reply.ai_paused
    assert not reply.alert_queued
    assert "findahelpline.com" in reply.text
    assert "KI-Coach" in reply.text  # the persona's language


async def test_events_stay_within_their_tenant(
    client: httpx.AsyncClient, tenants: Tenants, connection: asyncpg.Connection
) -> None:
    a = await _case(client, tenants, "alpha", {"escalationEmail": "a@alpha.example.com"})
    b = await _case(client, tenants, "beta", {})
    await _respond(connection, a, CRISIS)
    # B's creator sees none of A's events, whatever the filter.
    for query in ("", f"?conversation_id={a.conversation}", f"?program_id={a.program}"):
        listing = await client.get(f"/v1/safety-events{query}", headers=b.creator.headers)
        assert listing.status_code == 200
        assert listing.json()["items"] == []
    # A job bound to B can neither write a row in A's name (the policy's WITH CHECK) nor
    # point its own row at A's conversation (the tenant-carrying foreign key).
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _respond(connection, a, CRISIS, b.creator.creator_id)
    crossed = Case(b.creator, b.program, b.program_name, b.spec, b.end_user, a.conversation, 0)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await _respond(connection, crossed, CRISIS)
    conversation = await client.get(
        f"/v1/conversations/{a.conversation}", headers=a.creator.headers
    )
    assert conversation.json()["ai_paused"] is True  # A's own event paused it, once
    events = await tenants.owner(a.creator.creator_id, "SELECT count(*) AS n FROM safety_events")
    assert events[0]["n"] == 1
    # Pages: newest first, with a cursor.
    await _respond(connection, b, Verdict("blocked_topic", topic="x"))
    mine = await client.get("/v1/safety-events?limit=1", headers=a.creator.headers)
    assert len(mine.json()["items"]) == 1
    assert mine.json()["next_cursor"] is None
    bad = await client.get("/v1/safety-events?cursor=%%%", headers=a.creator.headers)
    assert bad.status_code == 400
