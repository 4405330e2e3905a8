"""Export: one archive with every item of the person exactly once, nothing of anyone else,
built by the worker's poller, downloaded once through a short-lived link."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx

from coachops_runtime.privacy.worker import PrivacyPoller
from tests.privacy.conftest import People, Person, drain


async def _download(client: httpx.AsyncClient, status: dict[str, Any]) -> httpx.Response:
    assert status["state"] == "ready", status
    return await client.get(urlsplit(status["download_url"]).path)


async def _ready(
    client: httpx.AsyncClient, poller: PrivacyPoller, url: str, headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.get(url, headers=headers)
    assert response.status_code == 202, response.text
    status_url = response.headers["Location"]
    assert response.json()["state"] == "pending"
    assert await drain(poller) >= 1
    response = await client.get(status_url, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["progress"] == 1.0
    return body


def _all_text(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False)


def _assert_nothing_of(archive: dict[str, Any], other: Person) -> None:
    text = _all_text(archive)
    for needle in [*other.identifiers, *other.texts, *map(str, other.conversations)]:
        assert needle not in text, needle


async def test_export_holds_each_item_once_and_nothing_of_anyone_else(
    people: People, poller: PrivacyPoller
) -> None:
    client = people.client
    creator = await people.creator("exporter")
    stranger_creator = await people.creator("strangers")
    person = await people.seed(creator, "a1")
    neighbour = await people.seed(creator, "b2")
    stranger = await people.seed(stranger_creator, "c3")

    status = await _ready(
        client, poller, f"/v1/end-users/{person.end_user_id}/export", creator.headers
    )
    # The same GET once ready is 200 with a link, no new job.
    again = await client.get(f"/v1/end-users/{person.end_user_id}/export", headers=creator.headers)
    assert again.status_code == 200
    assert again.json()["export_id"] == status["export_id"]
    response = await _download(client, again.json())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    archive = response.json()
    # The link worked once; the earlier link was replaced by the second status read.
    assert (await client.get(urlsplit(again.json()["download_url"]).path)).status_code == 404
    assert (await client.get(urlsplit(status["download_url"]).path)).status_code == 404
    after = await client.get(
        f"/v1/end-users/{person.end_user_id}/exports/{status['export_id']}",
        headers=creator.headers,
    )
    assert after.json()["state"] == "downloaded"

    tables = archive["tables"]
    assert archive["end_user_id"] == str(person.end_user_id)
    (profile,) = tables["end_users"]
    assert profile["email"] == person.email
    messages = Counter(m["message_id"] for m in tables["messages"])
    assert set(messages) == set(person.message_ids)
    assert set(messages.values()) == {1}
    assert {m["body"] for m in tables["messages"]} >= {
        t for t in person.texts if " says number " in t
    }
    replies = [m for m in tables["messages"] if m["author"] == "ai"]
    assert len(replies) == 2
    assert all(r["citations"][0]["source"] == "sleep.md" for r in replies)
    assert sorted(c["conversation_id"] for c in tables["conversations"]) == sorted(
        map(str, person.conversations)
    )
    assert {c["channel"] for c in tables["conversations"]} == {"telegram", "sms"}
    assert [g["goal_id"] for g in tables["goals"]] == person.goal_ids
    assert {c["channel"] for c in tables["consents"]} == {"telegram", "sms"}
    assert len(tables["consent_events"]) >= 2
    assert sorted(i["external_id"] for i in tables["channel_identities"]) == sorted(
        person.identities
    )
    assert len(tables["conversation_memory"]) == 2
    assert len(tables["reply_jobs"]) == 2
    assert all("prompt" not in job for job in tables["reply_jobs"])
    assert len(tables["channel_outbox"]) == 2  # the replies' deliveries
    assert len(tables["proactive_decisions"]) == 1
    assert "evening" in {s["item"] for s in tables["proactive_schedules"]}
    assert {e["template"] for e in tables["email_outbox"]} == {"end_user_invite", "magic_link"}
    assert all("payload" not in e for e in tables["email_outbox"])
    assert [t["purpose"] for t in tables["action_tokens"]] == ["magic_link"]
    assert all("token_hash" not in t for t in tables["action_tokens"])
    (vector,) = archive["vectors"]
    assert vector["metadata"]["end_user_id"] == str(person.end_user_id)
    # Every row is there once: no table lists a row twice.
    for name, rows in tables.items():
        dumped = [json.dumps(r, sort_keys=True) for r in rows]
        assert len(dumped) == len(set(dumped)), name
    _assert_nothing_of(archive, neighbour)
    _assert_nothing_of(archive, stranger)


async def test_end_user_exports_themself_as_zip(people: People, poller: PrivacyPoller) -> None:
    client = people.client
    creator = await people.creator("selfexport")
    person = await people.seed(creator, "d4")
    other = await people.seed(creator, "e5")
    started = await client.post("/v1/me/exports?format=zip", headers=person.me)
    assert started.status_code == 202, started.text
    assert started.headers["Location"] == f"/v1/me/exports/{started.json()['export_id']}"
    await drain(poller)
    status = (await client.get(started.headers["Location"], headers=person.me)).json()
    response = await _download(client, status)
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        document = json.loads(archive.read("export.json"))
    assert document["end_user_id"] == str(person.end_user_id)
    assert len(document["tables"]["messages"]) == len(person.message_ids)
    _assert_nothing_of(document, other)
    # Another end user cannot read this export's status.
    other_status = await client.get(started.headers["Location"], headers=other.me)
    assert other_status.status_code == 404
    # A bad format is a 422, not a job.
    assert (await client.get("/v1/me/export?format=tar", headers=person.me)).status_code == 422


async def test_exports_and_erasures_are_isolated_between_tenants(
    people: People, poller: PrivacyPoller
) -> None:
    client = people.client
    owner = await people.creator("ownera")
    intruder = await people.creator("intruderb")
    person = await people.seed(owner, "f6", messages=1)
    user = f"/v1/end-users/{person.end_user_id}"
    started = await client.post(f"{user}/exports", headers=owner.headers)
    assert started.status_code == 202
    export_id = started.json()["export_id"]
    erasure = await client.delete(user, headers=owner.headers)
    assert erasure.status_code == 202
    erasure_id = erasure.json()["erasure_id"]
    for method, path in (
        ("POST", f"{user}/exports"),
        ("GET", f"{user}/export"),
        ("GET", f"{user}/exports/{export_id}"),
        ("DELETE", user),
        ("GET", f"/v1/erasures/{erasure_id}"),
    ):
        response = await client.request(method, path, headers=intruder.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert str(person.end_user_id) not in response.json()["detail"]
    # Built, then its link is forged for the intruder's tenant: nothing.
    await drain(poller)
    rows = await people.superuser(
        "SELECT count(*) AS n FROM end_users WHERE end_user_id = $1", person.end_user_id
    )
    assert rows[0]["n"] == 0  # the erasure ran after the export
    forged = f"/v1/export-archives/{intruder.creator_id.hex}.{uuid.UUID(export_id).hex}.secret"
    assert (await client.get(forged)).status_code == 404
    assert (await client.get("/v1/export-archives/not-a-token")).status_code == 401
