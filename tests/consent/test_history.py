"""Consent history: STOP and START sent through a real webhook and the creator's change are
each one append-only event with source and request id; the current consent is the last
event; the creator and the end user read it, no other tenant can."""

from __future__ import annotations

from typing import Any

import httpx

from coachops_runtime.kit.pagination import encode_position
from tests.channels.conftest import Channeling, Sender
from tests.runtime.conftest import Creator


async def _history(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], limit: int = 2
) -> list[Any]:
    items: list[Any] = []
    cursor = ""
    while True:
        response = await client.get(f"{path}?limit={limit}{cursor}", headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def _after(events: list[Any]) -> str:
    return encode_position(events[-1]["event_id"])


async def _end_user(channeling: Channeling, robin: Sender) -> str:
    rows = await channeling.rows(
        "SELECT end_user_id FROM channel_identities WHERE external_id = $1 AND program_id = $2",
        robin.identity,
        robin.wired.program,
    )
    return str(rows[0]["end_user_id"])


async def _current(client: httpx.AsyncClient, creator: Creator, end_user: str) -> list[Any]:
    response = await client.get(f"/v1/end-users/{end_user}", headers=creator.headers)
    assert response.status_code == 200
    consents: list[Any] = response.json()["consents"]
    return consents


async def test_keywords_and_creator_changes_make_the_history(channeling: Channeling) -> None:
    client = channeling.client
    wired = await channeling.setup("sms")
    creator = wired.creator
    robin = channeling.sender(wired)
    await channeling.say(robin, "STOP")
    end_user = await _end_user(channeling, robin)
    await channeling.say(robin, "Start")
    await channeling.say(robin, "HELP")  # help changes nothing
    await channeling.say(robin, "unsubscribe")
    changed = await client.put(
        f"/v1/end-users/{end_user}/consents/sms",
        json={"granted": True, "address": robin.address},
        headers={**creator.headers, "X-Request-ID": "creator-optin-1"},
    )
    assert changed.status_code == 200, changed.text

    history = await _history(client, f"/v1/end-users/{end_user}/consent-history", creator.headers)
    assert [(e["source"], e["granted"]) for e in history] == [
        ("keyword_stop", False),
        ("keyword_start", True),
        ("keyword_stop", False),
        ("creator", True),
    ]
    assert {e["channel"] for e in history} == {"sms"}
    assert {e["address"] for e in history} == {robin.address}
    keyword_ids = [e["request_id"] for e in history[:3]]
    assert all(keyword_ids)
    assert len(set(keyword_ids)) == 3  # one webhook request each
    assert history[3]["request_id"] == "creator-optin-1"
    assert history[3]["actor_id"] is not None
    assert all(e["actor_id"] is None for e in history[:3])
    times = [e["created_at"] for e in history]
    assert times == sorted(times)

    # The current consent is the last change.
    (current,) = await _current(client, creator, end_user)
    assert current["granted"] is True
    assert current["updated_at"] == history[-1]["created_at"]
    await channeling.say(robin, "stop")
    (current,) = await _current(client, creator, end_user)
    assert current["granted"] is False

    # The end user reads the same history about themselves.
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user, "program_id": str(wired.program)},
        headers=creator.headers,
    )
    assert token.status_code == 201
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    # One page: an end user may make 5 requests a second.
    mine = await _history(client, "/v1/me/consent-history", me, limit=50)
    assert [e["event_id"] for e in mine] == [e["event_id"] for e in history] + [
        mine[-1]["event_id"]
    ]
    assert mine[-1]["source"] == "keyword_stop"
    # And changes it themselves.
    opted_in = await client.put(
        "/v1/me/consents/sms", json={"granted": True, "address": robin.address}, headers=me
    )
    assert opted_in.status_code == 200, opted_in.text
    assert opted_in.json()["granted"] is True
    (last,) = (
        await client.get("/v1/me/consent-history?cursor=" + _after(mine), headers=me)
    ).json()["items"]
    assert (last["source"], last["granted"], last["actor_id"]) == ("end_user", True, None)
    (current,) = await _current(client, creator, end_user)
    assert current["granted"] is True
    bad = await client.put("/v1/me/consents/fax", json={"granted": True}, headers=me)
    assert bad.status_code == 422


async def test_another_tenant_cannot_read_a_history(channeling: Channeling) -> None:
    client = channeling.client
    wired = await channeling.setup("whatsapp")
    robin = channeling.sender(wired)
    await channeling.say(robin, "STOP")
    end_user = await _end_user(channeling, robin)
    intruder = await channeling.coaching.creator("intruder")
    response = await client.get(
        f"/v1/end-users/{end_user}/consent-history", headers=intruder.headers
    )
    assert response.status_code == 404
    # Their own end user with a consent shows only their own events.
    invited = await client.post(
        "/v1/end-users", json={"external_id": "own"}, headers=intruder.headers
    )
    own = invited.json()["end_user_id"]
    await client.put(
        f"/v1/end-users/{own}/consents/email",
        json={"granted": True},
        headers=intruder.headers,
    )
    history = await _history(client, f"/v1/end-users/{own}/consent-history", intruder.headers)
    assert [(e["end_user_id"], e["source"]) for e in history] == [(own, "creator")]
    assert (
        await client.get("/v1/end-users/not-a-uuid/consent-history", headers=intruder.headers)
    ).status_code == 422
    bad_cursor = await client.get(
        f"/v1/end-users/{own}/consent-history?cursor=zzz", headers=intruder.headers
    )
    assert bad_cursor.status_code == 400
