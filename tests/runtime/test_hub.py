"""The creator hub: end users, enrolments, consent, conversations, takeover, analytics."""

from __future__ import annotations

import csv
import io
import json
import uuid

import httpx

from tests.runtime.conftest import Creator, Tenants


async def _end_user_token(
    client: httpx.AsyncClient, creator: Creator, end_user_id: str, program: uuid.UUID
) -> dict[str, str]:
    response = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user_id, "program_id": str(program)},
        headers=creator.headers,
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_end_users_invite_search_page_update_consent(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("hub")
    program = await tenants.add_program(creator, "yoga")
    ids = []
    for i in range(7):
        response = await client.post(
            "/v1/end-users",
            json={
                "email": f"user{i}@example.com",
                "display_name": f"User {i}" if i != 3 else "Zoë Needle",
                "external_id": f"ext-{i}",
                "time_zone": "Europe/Berlin",
                "program_ids": [str(program)] if i % 2 == 0 else [],
            },
            headers=creator.headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["end_user_id"])
    duplicate = await client.post(
        "/v1/end-users", json={"email": "user0@example.com"}, headers=creator.headers
    )
    assert duplicate.status_code == 409
    bad_zone = await client.post(
        "/v1/end-users", json={"time_zone": "Mars/Olympus"}, headers=creator.headers
    )
    assert bad_zone.status_code == 422
    assert bad_zone.headers["content-type"] == "application/problem+json"

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/end-users", params=params, headers=creator.headers)).json()
        seen += [item["end_user_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    found = await client.get("/v1/end-users", params={"search": "needle"}, headers=creator.headers)
    assert [i["end_user_id"] for i in found.json()["items"]] == [ids[3]]
    enrolled = await client.get(
        "/v1/end-users", params={"program_id": str(program)}, headers=creator.headers
    )
    assert len(enrolled.json()["items"]) == 4
    assert (
        await client.get("/v1/end-users", params={"cursor": "!!"}, headers=creator.headers)
    ).status_code == 400
    # Every filter at once, a page at a time: the statement's parameters line up.
    filtered: list[str] = []
    cursor = None
    while True:
        params = {"search": "USER", "program_id": str(program), "limit": "1"}
        page = (
            await client.get(
                "/v1/end-users",
                params={**params, **({"cursor": cursor} if cursor else {})},
                headers=creator.headers,
            )
        ).json()
        filtered += [item["end_user_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert filtered == [ids[0], ids[2], ids[4], ids[6]]

    patched = await client.patch(
        f"/v1/end-users/{ids[1]}",
        json={"time_zone": "America/New_York", "display_name": "Renamed"},
        headers=creator.headers,
    )
    assert patched.json()["time_zone"] == "America/New_York"
    locale = await client.patch(
        f"/v1/end-users/{ids[1]}", json={"locale": "de"}, headers=creator.headers
    )
    assert (locale.json()["locale"], locale.json()["time_zone"]) == ("de", "America/New_York")
    assert locale.json()["display_name"] == "Renamed"
    cleared = await client.patch(
        f"/v1/end-users/{ids[1]}", json={"display_name": None}, headers=creator.headers
    )
    assert cleared.status_code == 422  # the column cannot be null; leave it out to keep it
    enrol = await client.post(
        f"/v1/end-users/{ids[1]}/enrolments",
        json={"program_id": str(program)},
        headers=creator.headers,
    )
    assert enrol.status_code == 201
    consent = await client.put(
        f"/v1/end-users/{ids[1]}/consents/sms",
        json={"granted": True, "address": "+15550001"},
        headers=creator.headers,
    )
    assert consent.status_code == 200
    detail = (await client.get(f"/v1/end-users/{ids[1]}", headers=creator.headers)).json()
    assert [e["program_id"] for e in detail["enrolments"]] == [str(program)]
    assert detail["consents"][0]["channel"] == "sms"
    gone = await client.delete(
        f"/v1/end-users/{ids[1]}/enrolments/{program}", headers=creator.headers
    )
    assert gone.status_code == 204


async def test_conversation_takeover_export_and_analytics(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("talk")
    program = await tenants.add_program(creator, "sleep")
    user = await client.post(
        "/v1/end-users", json={"program_ids": [str(program)]}, headers=creator.headers
    )
    end_user_id = user.json()["end_user_id"]
    me = await _end_user_token(client, creator, end_user_id, program)

    first = await client.post("/v1/me/messages", json={"body": "I slept badly"}, headers=me)
    assert first.status_code == 202
    assert first.json()["reply"] == "queued"
    conversation_id = first.json()["message"]["conversation_id"]

    paused = await client.post(
        f"/v1/conversations/{conversation_id}/pause", headers=creator.headers
    )
    assert paused.json()["ai_paused"] is True
    reply = await client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"body": "This is your coach, in person."},
        headers=creator.headers,
    )
    assert reply.status_code == 201
    assert reply.json()["author"] == "creator"
    charged = (await client.get("/v1/creator/usage", headers=creator.headers)).json()
    second = await client.post("/v1/me/messages", json={"body": "thanks!"}, headers=me)
    assert second.status_code == 202
    assert second.json()["reply"] == "human"
    # A message a human answers never counts against the AI message quota.
    usage = (await client.get("/v1/creator/usage", headers=creator.headers)).json()
    assert usage["messages_used"] == charged["messages_used"]
    resumed = await client.post(
        f"/v1/conversations/{conversation_id}/resume", headers=creator.headers
    )
    assert resumed.json()["ai_paused"] is False

    listed = await client.get("/v1/conversations", headers=creator.headers)
    assert [c["conversation_id"] for c in listed.json()["items"]] == [conversation_id]
    page1 = await client.get(
        f"/v1/conversations/{conversation_id}/messages",
        params={"limit": 2},
        headers=creator.headers,
    )
    page2 = await client.get(
        f"/v1/conversations/{conversation_id}/messages",
        params={"cursor": page1.json()["next_cursor"]},
        headers=creator.headers,
    )
    bodies = [m["body"] for m in page1.json()["items"] + page2.json()["items"]]
    assert bodies == ["I slept badly", "This is your coach, in person.", "thanks!"]
    mine = await client.get("/v1/me/messages", headers=me)
    assert [m["body"] for m in mine.json()["items"]] == bodies

    exported = await client.get(
        f"/v1/conversations/{conversation_id}/export",
        params={"format": "csv"},
        headers=creator.headers,
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["body"] for r in rows] == bodies
    as_json = await client.get(
        f"/v1/conversations/{conversation_id}/export", headers=creator.headers
    )
    assert [m["body"] for m in json.loads(as_json.text)["messages"]] == bodies

    daily = await client.get(
        "/v1/analytics/daily", params={"program_id": str(program)}, headers=creator.headers
    )
    assert daily.status_code == 200, daily.text
    (today,) = daily.json()
    assert today["program_id"] == str(program)
    assert today["messages_in"] == 2
    assert today["messages_out"] == 1  # the creator's reply
    assert today["active_users"] == 1
    # No check-in went out in this test: the figures say so.
    assert today["check_ins_sent"] == 0
    assert today["check_ins_answered"] == 0
    assert today["check_in_response_rate"] is None
    backwards = await client.get(
        "/v1/analytics/daily",
        params={"from": "2026-02-01", "to": "2026-01-01"},
        headers=creator.headers,
    )
    assert backwards.status_code == 400
