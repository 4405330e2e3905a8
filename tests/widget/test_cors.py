"""The widget's script as served, and the end-user API's CORS per program (no browser)."""

from __future__ import annotations

import json
import re

import httpx
from fastapi import FastAPI

from tests.runtime.conftest import Tenants
from tests.widget.conftest import end_user_token, web_program

SITE = "https://coach.example"
OTHER = "https://elsewhere.example"


async def test_the_script_is_served_cacheable_and_revalidated(client: httpx.AsyncClient) -> None:
    response = await client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["access-control-allow-origin"] == "*"
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = await client.get("/widget.js", headers={"If-None-Match": f'W/"x", {etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    stale = await client.get("/widget.js", headers={"If-None-Match": '"0"'})
    assert stale.status_code == 200


async def test_the_script_has_nothing_a_strict_csp_or_model_text_could_abuse(
    client: httpx.AsyncClient,
) -> None:
    """What the browser test shows under a strict CSP, checked over the whole source: no
    string is ever parsed as code or as HTML, and no style attribute is written."""
    source = (await client.get("/widget.js")).text
    for banned in (
        "eval(",
        "new Function",
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        'setTimeout("',
        'setAttribute("style"',
        "cssText",
        "<style",
    ):
        assert banned not in source, banned
    assert "textContent" in source
    assert "createTextNode" in source


async def test_a_preflight_names_what_the_widget_sends(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/v1/me/messages",
        headers={
            "Origin": OTHER,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == OTHER
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"]
    assert {"authorization", "content-type", "last-event-id"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert response.headers["vary"] == "Origin"
    # A plain OPTIONS (no preflight) is not answered by the CORS layer.
    plain = await client.options("/v1/me/messages", headers={"Origin": OTHER})
    assert "access-control-allow-methods" not in plain.headers


async def test_a_listed_origin_reads_and_any_other_is_refused_before_anything_runs(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("widgetcors")
    program = await web_program(tenants, creator, "sleep", [SITE])
    me = {"Authorization": f"Bearer {await end_user_token(client, creator, program)}"}

    listed = await client.get("/v1/me/messages", headers={**me, "Origin": SITE})
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == SITE
    assert listed.headers["vary"] == "Origin"
    assert "retry-after" in listed.headers["access-control-expose-headers"]

    sent = await client.post(
        "/v1/me/messages", json={"body": "from a stranger"}, headers={**me, "Origin": OTHER}
    )
    assert sent.status_code == 403
    assert sent.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in sent.headers
    problem = sent.json()
    assert problem["type"].endswith("/forbidden")
    assert "allowedOrigins" in problem["detail"]
    assert problem["instance"] == "/v1/me/messages"
    # Refused before the route ran: nothing was stored.
    stored = await client.get("/v1/me/messages", headers=me)
    assert stored.json()["items"] == []

    posted = await client.post(
        "/v1/me/messages", json={"body": "hello"}, headers={**me, "Origin": SITE}
    )
    assert posted.status_code == 202, posted.text
    assert posted.headers["access-control-allow-origin"] == SITE
    # An origin differing only in scheme or port is another origin.
    for near in ("http://coach.example", "https://coach.example:8443", SITE + "/"):
        refused = await client.get("/v1/me", headers={**me, "Origin": near})
        assert refused.status_code == 403, near


async def test_calls_without_origin_or_from_the_same_origin_are_untouched(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("widgetsame")
    program = await web_program(tenants, creator, "sleep", [])
    me = {"Authorization": f"Bearer {await end_user_token(client, creator, program)}"}
    plain = await client.get("/v1/me", headers=me)
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers
    same = await client.get("/v1/me", headers={**me, "Origin": "http://runtime"})
    assert same.status_code == 200
    assert "access-control-allow-origin" not in same.headers
    # No origin listed: a page elsewhere is refused.
    elsewhere = await client.get("/v1/me", headers={**me, "Origin": SITE})
    assert elsewhere.status_code == 403
    # Only /v1/me is the widget's: other routes get no CORS headers.
    creator_call = await client.get("/v1/programs", headers={**creator.headers, "Origin": SITE})
    assert "access-control-allow-origin" not in creator_call.headers


async def test_a_bad_token_gets_a_readable_401(client: httpx.AsyncClient) -> None:
    for authorization in ("Bearer not-a-token", "Basic dXNlcjpwYXNz", ""):
        headers = {"Origin": OTHER, "Authorization": authorization}
        response = await client.post("/v1/me/messages", json={"body": "hi"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == OTHER


async def test_origins_are_per_program_and_per_tenant(
    client: httpx.AsyncClient, tenants: Tenants, app: FastAPI
) -> None:
    first = await tenants.signed_up("widgetone")
    second = await tenants.signed_up("widgettwo")
    site_b = "https://b.example"
    one = await web_program(tenants, first, "sleep", [SITE])
    one_other = await web_program(tenants, first, "focus", [site_b])
    two = await web_program(tenants, second, "sleep", [site_b])
    token_one = await end_user_token(client, first, one)
    token_one_other = await end_user_token(client, first, one_other)
    token_two = await end_user_token(client, second, two)

    async def status(token: str, origin: str) -> int:
        headers = {"Authorization": f"Bearer {token}", "Origin": origin}
        return (await client.get("/v1/me", headers=headers)).status_code

    assert await status(token_one, SITE) == 200
    assert await status(token_one, site_b) == 403  # another program's origin
    assert await status(token_one_other, site_b) == 200
    assert await status(token_one_other, SITE) == 403
    assert await status(token_two, site_b) == 200
    assert await status(token_two, SITE) == 403  # another tenant's origin

    # The list is read again (tenant_cache_seconds is 0 here): a change applies at once.
    await tenants.owner(
        first.creator_id,
        "UPDATE programs SET spec = $2::jsonb WHERE program_id = $1",
        one,
        json.dumps({"channels": [{"type": "web", "allowedOrigins": [site_b]}]}),
    )
    assert await status(token_one, SITE) == 403
    assert await status(token_one, site_b) == 200
    # A deleted program's token reads nothing from anywhere.
    await tenants.owner(
        first.creator_id, "UPDATE programs SET deleted_at = now() WHERE program_id = $1", one
    )
    assert await status(token_one, site_b) == 403
