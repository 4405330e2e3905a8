"""Creator A's credentials can neither read nor change creator B's data, on every endpoint.

Every attempt answers as if B's object did not exist (404, or an empty list), and no
response body mentions B's ids or name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.runtime.conftest import Creator, Tenants


@dataclass
class World:
    creator: Creator
    program: uuid.UUID
    end_user: str
    conversation: str
    api_key_id: str
    end_user_token: str
    email: str
    document: str = ""
    goal: str = ""

    def secrets(self) -> list[str]:
        return [
            self.creator.name,
            str(self.creator.creator_id),
            str(self.program),
            self.end_user,
            self.conversation,
            self.api_key_id,
            self.email,
            self.document,
            self.goal,
        ]


async def build(client: httpx.AsyncClient, tenants: Tenants, name: str) -> World:
    creator = await tenants.signed_up(name)
    program = await tenants.add_program(creator, f"{name}-prog")
    email = f"client-of-{name}@example.com"
    user = await client.post(
        "/v1/end-users",
        json={"email": email, "display_name": f"client of {name}", "program_ids": [str(program)]},
        headers=creator.headers,
    )
    assert user.status_code == 201, user.text
    end_user = user.json()["end_user_id"]
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user, "program_id": str(program)},
        headers=creator.headers,
    )
    end_user_token = token.json()["access_token"]
    sent = await client.post(
        "/v1/me/messages",
        json={"body": f"hello from {name}"},
        headers={"Authorization": f"Bearer {end_user_token}"},
    )
    assert sent.status_code == 202, sent.text
    conversation = sent.json()["message"]["conversation_id"]
    key = await client.post(
        "/v1/api-keys", json={"name": "k", "scopes": ["endusers:read"]}, headers=creator.headers
    )
    document = await client.post(
        f"/v1/programs/{name}-prog/knowledge",
        files={"file": (f"{name}-notes.txt", f"notes of {name}".encode(), "text/plain")},
        headers=creator.headers,
    )
    assert document.status_code == 201, document.text
    goal = await client.post(
        "/v1/me/goals",
        json={"title": f"goal of {name}"},
        headers={"Authorization": f"Bearer {end_user_token}"},
    )
    assert goal.status_code == 201, goal.text
    return World(
        creator,
        program,
        end_user,
        conversation,
        key.json()["api_key_id"],
        end_user_token,
        email,
        document.json()["document_id"],
        goal.json()["goal_id"],
    )


@pytest.fixture
async def worlds(client: httpx.AsyncClient, tenants: Tenants) -> tuple[World, World]:
    return await build(client, tenants, "acme"), await build(client, tenants, "bolt")


Listed = tuple[str, str, str]  # a list of objects: (id field, A's id, B's id)


def attempts(
    a: World, b: World
) -> list[tuple[str, str, dict[str, Any] | None, int | str | Listed]]:
    """(method, path, json body, expected) for A's token against B's data. Expected is a
    status, 'page' (a page of A's end users or conversations only), or a Listed: 200 with
    a list that holds A's object and not B's."""
    p, u, c, k, g = b.program, b.end_user, b.conversation, b.api_key_id, b.goal
    return [
        ("GET", "/v1/creator", None, 200),
        ("GET", "/v1/creator/usage", None, 200),
        ("GET", "/v1/api-keys", None, ("api_key_id", a.api_key_id, k)),
        ("DELETE", f"/v1/api-keys/{k}", None, 404),
        ("POST", "/v1/end-user-tokens", {"end_user_id": u, "program_id": str(p)}, 404),
        ("POST", f"/v1/end-users/{u}/magic-links", {"program_id": str(p)}, 404),
        ("GET", "/v1/programs", None, ("program_id", str(a.program), str(p))),
        ("GET", f"/v1/programs/{b.creator.name}-prog", None, 404),
        ("POST", "/v1/end-users", {"email": "new@example.com", "program_ids": [str(p)]}, 404),
        ("GET", "/v1/end-users", None, "page"),
        ("GET", f"/v1/end-users?search={b.email}", None, "page"),
        ("GET", f"/v1/end-users?program_id={p}", None, "page"),
        ("GET", f"/v1/end-users/{u}", None, 404),
        ("PATCH", f"/v1/end-users/{u}", {"display_name": "pwned"}, 404),
        ("POST", f"/v1/end-users/{u}/enrolments", {"program_id": str(a.program)}, 404),
        ("POST", f"/v1/end-users/{a.end_user}/enrolments", {"program_id": str(p)}, 404),
        ("DELETE", f"/v1/end-users/{u}/enrolments/{p}", None, 404),
        ("PUT", f"/v1/end-users/{u}/consents/sms", {"granted": True}, 404),
        ("GET", "/v1/conversations", None, "page"),
        ("GET", f"/v1/conversations?end_user_id={u}", None, "page"),
        ("GET", f"/v1/conversations?program_id={p}", None, "page"),
        ("GET", f"/v1/conversations/{c}", None, 404),
        ("GET", f"/v1/conversations/{c}/messages", None, 404),
        ("GET", f"/v1/conversations/{c}/export?format=csv", None, 404),
        ("GET", f"/v1/conversations/{c}/export?format=json", None, 404),
        ("POST", f"/v1/conversations/{c}/pause", None, 404),
        ("POST", f"/v1/conversations/{c}/resume", None, 404),
        ("POST", f"/v1/conversations/{c}/messages", {"body": "injected"}, 404),
        ("GET", "/v1/analytics/daily", None, ("program_id", str(a.program), str(p))),
        ("GET", f"/v1/analytics/daily?program_id={p}", None, 404),
        ("GET", f"/v1/programs/{b.creator.name}-prog/knowledge", None, 404),
        ("GET", f"/v1/programs/{b.creator.name}-prog/knowledge/{b.document}", None, 404),
        ("GET", f"/v1/programs/{a.creator.name}-prog/knowledge/{b.document}", None, 404),
        ("DELETE", f"/v1/programs/{b.creator.name}-prog/knowledge/{b.document}", None, 404),
        ("DELETE", f"/v1/programs/{a.creator.name}-prog/knowledge/{b.document}", None, 404),
        ("GET", f"/v1/end-users/{u}/goals", None, 404),
        ("GET", f"/v1/end-users/{a.end_user}/goals?program_id={p}", None, "page"),
        ("POST", f"/v1/end-users/{u}/goals", {"title": "x", "program_id": str(p)}, 404),
        ("POST", f"/v1/end-users/{a.end_user}/goals", {"title": "x", "program_id": str(p)}, 404),
        ("PATCH", f"/v1/end-users/{u}/goals/{g}", {"title": "pwned"}, 404),
        ("PATCH", f"/v1/end-users/{a.end_user}/goals/{g}", {"title": "pwned"}, 404),
        ("POST", f"/v1/end-users/{u}/goals/{g}/close", {"status": "abandoned"}, 404),
        ("POST", f"/v1/end-users/{a.end_user}/goals/{g}/close", {"status": "abandoned"}, 404),
        ("GET", "/v1/safety-events", None, "page"),
        ("GET", f"/v1/safety-events?conversation_id={c}", None, "page"),
        ("GET", f"/v1/safety-events?program_id={p}&end_user_id={u}", None, "page"),
    ]


async def test_creator_a_cannot_touch_creator_b(
    client: httpx.AsyncClient, tenants: Tenants, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    for method, path, body, expected in attempts(a, b):
        response = await client.request(method, path, json=body, headers=a.creator.headers)
        # The problem's "instance" echoes the path A sent; nothing else may name B's data.
        text = response.text.replace(path.split("?")[0], "")
        for secret in b.secrets():
            assert secret not in text, (method, path, secret)
        if isinstance(expected, tuple):
            field, mine, theirs = expected
            assert response.status_code == 200, (method, path, response.text)
            ids = [item[field] for item in response.json()]
            assert mine in ids, (method, path, ids)
            assert theirs not in ids, (method, path, ids)
        elif expected == "page":
            assert response.status_code == 200, (method, path, response.text)
            items = response.json()["items"]
            assert all(item.get("end_user_id") == a.end_user for item in items), path
        else:
            assert response.status_code == expected, (method, path, response.text)
            if expected == 404:
                assert response.headers["content-type"] == "application/problem+json"

    # B's data is untouched.
    conversation = await client.get(
        f"/v1/conversations/{b.conversation}", headers=b.creator.headers
    )
    assert conversation.json()["ai_paused"] is False
    messages = await client.get(
        f"/v1/conversations/{b.conversation}/messages", headers=b.creator.headers
    )
    assert [m["body"] for m in messages.json()["items"]] == ["hello from bolt"]
    user = await client.get(f"/v1/end-users/{b.end_user}", headers=b.creator.headers)
    assert user.json()["display_name"] == "client of bolt"
    assert user.json()["consents"] == []
    keys = await client.get("/v1/api-keys", headers=b.creator.headers)
    assert keys.json()[0]["revoked_at"] is None
    documents = await client.get(
        f"/v1/programs/{b.creator.name}-prog/knowledge", headers=b.creator.headers
    )
    assert [d["document_id"] for d in documents.json()["items"]] == [b.document]
    goals = await client.get(f"/v1/end-users/{b.end_user}/goals", headers=b.creator.headers)
    assert [(x["title"], x["status"]) for x in goals.json()["items"]] == [
        ("goal of bolt", "active")
    ]
    # An upload into B's program by name lands nowhere.
    upload = await client.post(
        f"/v1/programs/{b.creator.name}-prog/knowledge",
        files={"file": ("x.txt", b"injected", "text/plain")},
        headers=a.creator.headers,
    )
    assert upload.status_code == 404, upload.text


async def test_end_user_of_a_sees_only_their_own_conversation(
    client: httpx.AsyncClient, worlds: tuple[World, World]
) -> None:
    a, b = worlds
    headers = {"Authorization": f"Bearer {a.end_user_token}"}
    mine = await client.get("/v1/me/messages", headers=headers)
    assert [m["body"] for m in mine.json()["items"]] == ["hello from acme"]
    for secret in b.secrets():
        assert secret not in mine.text
    # ... and only their own goals, which B's goals are not.
    goals = await client.get("/v1/me/goals", headers=headers)
    assert [g["title"] for g in goals.json()["items"]] == ["goal of acme"]
    for method, path, body in (
        ("PATCH", f"/v1/me/goals/{b.goal}", {"title": "pwned"}),
        ("POST", f"/v1/me/goals/{b.goal}/close", {"status": "abandoned"}),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert b.goal not in response.text.replace(path, "")
    # A's end-user token is not accepted on creator routes.
    assert (await client.get("/v1/conversations", headers=headers)).status_code == 401
