"""The app starts on the runtime role and serves health and the creator's own tenant."""

from __future__ import annotations

import httpx

from tests.runtime.conftest import Tenants


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}
    metrics = await client.get("/metrics")
    assert "coachops_http_request_duration_seconds" in metrics.text


async def test_signup_login_and_me(client: httpx.AsyncClient, tenants: Tenants) -> None:
    creator = await tenants.signed_up("alpha")
    response = await client.get("/v1/creator", headers=creator.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "alpha"
    assert body["namespace"] == "coachops-alpha"
    assert "RateLimit" in response.headers
