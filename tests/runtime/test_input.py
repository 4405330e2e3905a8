"""Bad input is a 4xx problem, never a 500: every string input is checked before it can
reach PostgreSQL, and every error answer carries the request id."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated, Any, Literal, get_args, get_origin

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from coachops_runtime.app import create_app
from coachops_runtime.kit.errors import BadRequest
from coachops_runtime.kit.pagination import decode_keyset, decode_position
from coachops_runtime.kit.text import refuse_unstorable, storable_tree
from tests.runtime.conftest import Creator, Tenants
from tests.runtime.strategies import hostile_cursors, with_unstorable

CHECKS = {refuse_unstorable, storable_tree}


def _checked(metadata: Any) -> bool:
    return any(getattr(item, "func", None) in CHECKS for item in metadata)


def unchecked(annotation: Any, where: str, checked: bool = False) -> list[str]:
    """Where a string could enter without the storage check (Storable or StorableTree)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        return unchecked(base, where, checked or _checked(metadata))
    if annotation is str:
        return [] if checked else [where]
    if origin is Literal or checked:
        return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [
            found
            for name, field in annotation.model_fields.items()
            for found in unchecked(field.annotation, f"{where}.{name}", _checked(field.metadata))
        ]
    return [found for arg in get_args(annotation) for found in unchecked(arg, where)]


def test_every_string_a_route_takes_is_checked_for_storage() -> None:
    """A new field or parameter of type ``str`` without ``Storable`` fails here."""
    found: list[str] = []
    routes = [r for r in create_app().routes if isinstance(r, APIRoute)]
    assert routes
    for route in routes:
        dependant = route.dependant
        params = dependant.query_params + dependant.path_params + dependant.header_params
        for param in [*params, *dependant.body_params, *dependant.cookie_params]:
            info = param.field_info
            where = f"{route.path} {param.name}"
            found += unchecked(info.annotation, where, _checked(info.metadata))
        # The request-facing dependencies read only the raw Authorization header.
        for sub in dependant.dependencies:
            assert not sub.query_params, route.path
            assert not sub.header_params, route.path
            assert not sub.body_params, route.path
    assert found == []


def test_the_walk_above_finds_an_unchecked_string() -> None:
    class Loose(BaseModel):
        ok: Annotated[str, "unrelated metadata"] | None = None
        nested: list[dict[str, int]] = []

    assert unchecked(Loose, "Loose") == ["Loose.ok", "Loose.nested"]


@pytest.fixture
async def creator(tenants: Tenants) -> Creator:
    return await tenants.signed_up("hostile")


def _requests(creator: Creator, text: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, url, httpx arguments) of inputs that reach SQL, text put where they take it."""
    return [
        ("GET", "/v1/end-users", {"params": {"search": text}, "headers": creator.headers}),
        ("POST", "/v1/auth/login", {"json": {"email": text, "password": "x"}}),
        ("POST", "/v1/auth/password-reset", {"json": {"email": text}}),
        (
            "POST",
            "/v1/end-users",
            {"json": {"display_name": text, "email": text}, "headers": creator.headers},
        ),
        (
            "POST",
            "/v1/programs",
            {
                "json": {"name": "p", "spec": {"title": text, "persona": {"name": text}}},
                "headers": creator.headers,
            },
        ),
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_unstorable_text_is_a_422_problem(
    client: httpx.AsyncClient, creator: Creator, data: st.DataObject
) -> None:
    # An e-mail-shaped text with refused characters anywhere: it passes the e-mail
    # pattern, so only the storage check stands between it and PostgreSQL. A URL
    # cannot carry a surrogate, so query strings get NUL only.
    email = data.draw(st.emails().map(str))
    for method, url, arguments in _requests(creator, ""):
        alphabet = st.just("\x00") if "params" in arguments else None
        text = data.draw(
            with_unstorable(email) if alphabet is None else with_unstorable(email, alphabet)
        )
        method, url, arguments = next(r for r in _requests(creator, text) if r[:2] == (method, url))
        if "json" in arguments:  # as JSON escapes (httpx would send raw, invalid UTF-8)
            body = json.dumps(arguments.pop("json"))
            headers = {**arguments.get("headers", {}), "Content-Type": "application/json"}
            arguments = {**arguments, "content": body, "headers": headers}
        response = await client.request(method, url, **arguments)
        assert response.status_code == 422, (method, url, repr(text), response.text)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        messages = " ".join(error["msg"] for error in problem["errors"])
        # pydantic-core itself refuses a lone surrogate where it reads a str ("unicode");
        # Storable names NUL, and surrogates inside whole documents (program specs).
        assert any(word in messages for word in ("NUL", "surrogate", "unicode")), problem


@pytest.fixture
async def conversation(
    client: httpx.AsyncClient, tenants: Tenants, creator: Creator
) -> tuple[str, dict[str, str]]:
    """A conversation of ``creator``'s, and its end user's headers."""
    program = await tenants.add_program(creator, "paged")
    user = await client.post(
        "/v1/end-users", json={"program_ids": [str(program)]}, headers=creator.headers
    )
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": user.json()["end_user_id"], "program_id": str(program)},
        headers=creator.headers,
    )
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    sent = await client.post("/v1/me/messages", json={"body": "hi"}, headers=me)
    assert sent.status_code == 202, sent.text
    return sent.json()["message"]["conversation_id"], me


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cursor=hostile_cursors())
async def test_a_hostile_cursor_is_a_400_on_every_list(
    client: httpx.AsyncClient,
    creator: Creator,
    conversation: tuple[str, dict[str, str]],
    cursor: str,
) -> None:
    conversation_id, me = conversation
    lists: list[tuple[str, dict[str, str], Any]] = [
        ("/v1/end-users", creator.headers, decode_keyset),
        ("/v1/conversations", creator.headers, decode_keyset),
        (f"/v1/conversations/{conversation_id}/messages", creator.headers, decode_position),
    ]
    # /v1/me/messages pages through the same code; an end user may make 5 requests per
    # second, so it gets every tenth cursor only.
    if len(cursor) % 10 == 0:
        await asyncio.sleep(0.2)
        lists.append(("/v1/me/messages", me, decode_position))
    for url, headers, decode in lists:
        try:
            decode(cursor)
            expected = 200
        except BadRequest:
            expected = 400
        response = await client.get(url, params={"cursor": cursor}, headers=headers)
        if not cursor:
            expected = 200  # an empty cursor is the first page
        elif len(cursor) > 500 or "\x00" in cursor:
            expected = 422
        assert response.status_code == expected, (url, cursor, response.text)


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/broken", broken)
    return app


async def test_an_unhandled_error_is_a_problem_with_the_request_id(
    failing_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"]
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert "a bug" not in response.text

    chosen = str(uuid.uuid4())
    again = await client.get("/v1/broken", headers={"X-Request-ID": chosen})
    assert again.json()["request_id"] == again.headers["x-request-id"] == chosen
    # A request id the logs could not carry as sent (not ASCII) is replaced.
    odd = await client.get("/v1/broken", headers={b"X-Request-ID": "²²²".encode("latin-1")})
    assert odd.json()["request_id"] == odd.headers["x-request-id"]
    assert odd.headers["x-request-id"].isascii()
    assert odd.headers["x-request-id"] != "²²²"
    # Every other error carries it the same way.
    refused = await client.post("/v1/auth/login", json={"email": "x"})
    assert refused.status_code == 422
    assert refused.json()["request_id"] == refused.headers["x-request-id"] != ""
