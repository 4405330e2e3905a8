"""The audit log: what creators and API keys change is recorded with actor and request id,
listed newest first with filters and cursors, walled per tenant, and append-only for the
runtime role (raw SQL: no UPDATE, DELETE or TRUNCATE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Database
from tests.runtime.conftest import Creator, Tenants


async def _entries(
    client: httpx.AsyncClient, creator: Creator, query: str = ""
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/audit-log?limit=200{query}", headers=creator.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _as_tenant(conn: asyncpg.Connection, creator: Creator, sql: str, *args: Any) -> Any:
    """One statement in its own transaction, bound to ``creator``'s tenant."""
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('coachops.tenant_id', $1, true)", str(creator.creator_id)
        )
        return await conn.fetchval(sql, *args)


async def _api_key(client: httpx.AsyncClient, creator: Creator) -> tuple[str, str]:
    response = await client.post(
        "/v1/api-keys",
        json={"name": "backend", "scopes": ["endusers:read", "endusers:write"]},
        headers={**creator.headers, "X-Request-ID": "req-key-create"},
    )
    assert response.status_code == 201, response.text
    return response.json()["api_key_id"], response.json()["key"]


async def test_changes_are_recorded_with_actor_target_and_request_id(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("auditor")
    key_id, key = await _api_key(client, creator)
    by_key = {"Authorization": f"Bearer {key}", "X-Request-ID": "req-invite"}
    invited = await client.post(
        "/v1/end-users",
        json={"email": "robin@example.com", "display_name": "Robin"},
        headers=by_key,
    )
    assert invited.status_code == 201, invited.text
    end_user = invited.json()["end_user_id"]
    changed = await client.patch(
        f"/v1/end-users/{end_user}", json={"time_zone": "Europe/Berlin"}, headers=creator.headers
    )
    assert changed.status_code == 200
    consent = await client.put(
        f"/v1/end-users/{end_user}/consents/sms",
        json={"granted": True, "address": "+15550001234"},
        headers=creator.headers,
    )
    assert consent.status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=creator.headers)
    assert revoked.status_code == 204
    # A refused change leaves nothing behind.
    missing = await client.patch(
        "/v1/end-users/00000000-0000-4000-8000-000000000000",
        json={"locale": "de"},
        headers=creator.headers,
    )
    assert missing.status_code == 404

    entries = await _entries(client, creator)
    assert [e["action"] for e in entries] == [
        "api_key.revoke",
        "end_user.consent",
        "end_user.update",
        "end_user.invite",
        "api_key.create",
    ]
    revoke, consent_entry, update, invite, create = entries
    assert invite["actor_kind"] == "api_key"
    assert invite["actor_id"] == key_id
    assert invite["request_id"] == "req-invite"
    assert (invite["target_kind"], invite["target_id"]) == ("end_user", end_user)
    assert create["actor_kind"] == "account"
    assert create["actor_id"] is not None
    assert create["request_id"] == "req-key-create"
    assert create["details"] == {"scopes": ["endusers:read", "endusers:write"]}
    assert update["details"] == {"fields": ["time_zone"]}
    assert consent_entry["details"] == {"channel": "sms", "granted": True}
    assert revoke["target_id"] == key_id
    # Ids and settings only: neither the e-mail, the name nor the number is in the log.
    text = str(entries)
    for personal in ("robin@example.com", "Robin", "+15550001234"):
        assert personal not in text


async def test_filters_and_cursor_pages(client: httpx.AsyncClient, tenants: Tenants) -> None:
    creator = await tenants.signed_up("pager")
    key_id, key = await _api_key(client, creator)
    for n in range(5):
        response = await client.post(
            "/v1/end-users",
            json={"external_id": f"u{n}"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201
    everything = await _entries(client, creator)
    assert len(everything) == 6

    seen: list[int] = []
    cursor = ""
    while True:
        response = await client.get(
            f"/v1/audit-log?limit=2&action=end_user.invite{cursor}", headers=creator.headers
        )
        assert response.status_code == 200
        page = response.json()
        seen += [e["audit_id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == 5

    assert len(await _entries(client, creator, f"&actor_id={key_id}")) == 5
    assert [e["action"] for e in await _entries(client, creator, "&action=api_key.create")] == [
        "api_key.create"
    ]
    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    earlier = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert await _entries(client, creator, f"&since={later}") == []
    assert len(await _entries(client, creator, f"&since={earlier}&until={later}")) == 6
    assert await _entries(client, creator, f"&until={earlier}") == []


BAD_QUERIES = [
    "cursor=not-a-cursor",
    "since=2026-01-01T00:00:00",  # no time zone
    "since=0001-01-01T00:00:00%2B14:00",  # no UTC time
    "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
    "action=DROP%20TABLE",
    "limit=0",
]


async def test_bad_queries_are_4xx(client: httpx.AsyncClient, tenants: Tenants) -> None:
    creator = await tenants.signed_up("picky")
    for query in BAD_QUERIES:
        response = await client.get(f"/v1/audit-log?{query}", headers=creator.headers)
        assert response.status_code in (400, 422), (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_tenant_reads_only_its_own_log_and_api_keys_read_none(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    a = await tenants.signed_up("north")
    b = await tenants.signed_up("south")
    await _api_key(client, a)
    _, b_key = await _api_key(client, b)
    invited = await client.post(
        "/v1/end-users", json={"external_id": "x"}, headers={"Authorization": f"Bearer {b_key}"}
    )
    assert invited.status_code == 201
    a_entries = await _entries(client, a)
    b_entries = await _entries(client, b)
    assert [e["action"] for e in a_entries] == ["api_key.create"]
    assert [e["action"] for e in b_entries] == ["end_user.invite", "api_key.create"]
    assert not {e["audit_id"] for e in a_entries} & {e["audit_id"] for e in b_entries}
    # Who did what is for signed-in accounts, not for a backend's API key.
    response = await client.get("/v1/audit-log", headers={"Authorization": f"Bearer {b_key}"})
    assert response.status_code == 403


async def test_the_runtime_role_may_insert_and_read_but_never_change_or_remove(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    a = await tenants.signed_up("ledger")
    b = await tenants.signed_up("other")
    await _api_key(client, a)
    conn = await asyncpg.connect(database.runtime_dsn)
    try:
        assert await _as_tenant(conn, a, "SELECT count(*) FROM audit_log") == 1
        await _as_tenant(
            conn,
            a,
            "INSERT INTO audit_log (creator_id, actor_kind, action, target_kind)"
            " VALUES ($1, 'system', 'test.insert', 'test')",
            a.creator_id,
        )
        for statement in (
            "UPDATE audit_log SET action = 'rewritten'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "UPDATE consent_events SET granted = NOT granted",
            "DELETE FROM consent_events",
            # Consent changes only through the history.
            "UPDATE consents SET granted = true",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await _as_tenant(conn, a, statement)
        # Writing an entry into another tenant's log is refused by the policy.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_tenant(
                conn,
                a,
                "INSERT INTO audit_log (creator_id, actor_kind, action, target_kind)"
                " VALUES ($1, 'system', 'test.forged', 'test')",
                b.creator_id,
            )
    finally:
        await conn.close()
    assert [e["action"] for e in await _entries(client, a)] == ["test.insert", "api_key.create"]
    assert await _entries(client, b) == []


async def test_goals_and_takeovers_are_recorded(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("coachlog")
    program = await tenants.add_program(creator, "sleep")
    invited = await client.post(
        "/v1/end-users", json={"program_ids": [str(program)]}, headers=creator.headers
    )
    end_user = invited.json()["end_user_id"]
    goals = f"/v1/end-users/{end_user}/goals"
    goal = await client.post(
        goals, json={"program_id": str(program), "title": "Sleep 8 hours"}, headers=creator.headers
    )
    assert goal.status_code == 201, goal.text
    goal_id = goal.json()["goal_id"]
    for response in (
        await client.patch(f"{goals}/{goal_id}", json={"details": "x"}, headers=creator.headers),
        await client.post(
            f"{goals}/{goal_id}/close", json={"status": "achieved"}, headers=creator.headers
        ),
    ):
        assert response.status_code == 200, response.text
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user, "program_id": str(program)},
        headers=creator.headers,
    )
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    sent = await client.post("/v1/me/messages", json={"body": "hello"}, headers=me)
    assert sent.status_code == 202, sent.text
    conversation = sent.json()["message"]["conversation_id"]
    base = f"/v1/conversations/{conversation}"
    for response in (
        await client.post(f"{base}/pause", headers=creator.headers),
        await client.post(f"{base}/messages", json={"body": "I'm here"}, headers=creator.headers),
        await client.post(f"{base}/resume", headers=creator.headers),
    ):
        assert response.status_code in (200, 201), response.text

    entries = await _entries(client, creator)
    assert [(e["action"], e["target_id"]) for e in entries[:6]] == [
        ("conversation.resume", conversation),
        ("conversation.reply", conversation),
        ("conversation.pause", conversation),
        ("goal.close", goal_id),
        ("goal.update", goal_id),
        ("goal.create", goal_id),
    ]
    assert entries[4]["details"] == {"end_user_id": end_user, "fields": ["details"]}
    assert "message_id" in entries[1]["details"]
    assert "I'm here" not in str(entries)
