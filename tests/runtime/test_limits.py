"""Rate limits and quotas from the plan, atomic in Redis; and what happens without Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from coachops_devstack.ports import free_port
from coachops_runtime.app import create_app
from coachops_runtime.kit.settings import Settings
from tests.runtime.conftest import Creator, Tenants


async def _enrolled_end_user(
    client: httpx.AsyncClient, tenants: Tenants, creator: Creator
) -> dict[str, str]:
    program = await tenants.add_program(creator, "run")
    user = await client.post(
        "/v1/end-users", json={"program_ids": [str(program)]}, headers=creator.headers
    )
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": user.json()["end_user_id"], "program_id": str(program)},
        headers=creator.headers,
    )
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_tenant_rate_limit_answers_429_with_headers(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("rl", plan={"requestsPerSecond": 3})
    statuses = []
    for _ in range(8):
        response = await client.get("/v1/creator", headers=creator.headers)
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.headers["RateLimit-Policy"] == '"tenant";q=3;w=1'
            assert response.headers["RateLimit"].startswith('"tenant";r=')
    assert 200 in statuses
    assert 429 in statuses
    limited = response
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["type"].endswith("/rate-limited")
    assert "RateLimit" in limited.headers


async def test_monthly_message_quota_has_its_own_error(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up(
        "quota", plan={"messagesPerMonth": 2, "requestsPerSecond": 100}
    )
    me = await _enrolled_end_user(client, tenants, creator)
    for body in ("one", "two"):
        assert (
            await client.post("/v1/me/messages", json={"body": body}, headers=me)
        ).status_code == 202
    over = await client.post("/v1/me/messages", json={"body": "three"}, headers=me)
    assert over.status_code == 429
    assert over.json()["type"].endswith("/quota-exceeded")
    assert "monthly quota of 2" in over.json()["detail"]
    usage = await client.get("/v1/creator/usage", headers=creator.headers)
    assert usage.json()["messages_used"] == 2


@pytest.fixture
async def redis_down_client(runtime_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second runtime on the same database whose Redis is not there."""
    dead = f"redis://default:nothing@127.0.0.1:{free_port()}/0"
    app = create_app(runtime_settings.model_copy(update={"redis_url": SecretStr(dead)}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as http:
            yield http


async def test_redis_down_reads_work_ai_fails_closed(
    client: httpx.AsyncClient, tenants: Tenants, redis_down_client: httpx.AsyncClient
) -> None:
    creator = await tenants.signed_up("nored")
    me = await _enrolled_end_user(client, tenants, creator)
    down = redis_down_client
    assert (await down.get("/v1/end-users", headers=creator.headers)).status_code == 200
    assert (await down.get("/v1/conversations", headers=creator.headers)).status_code == 200
    assert (await down.get("/v1/me/messages", headers=me)).status_code == 200
    usage = await down.get("/v1/creator/usage", headers=creator.headers)
    assert usage.status_code == 200
    assert usage.json()["messages_used"] is None
    ai = await down.post("/v1/me/messages", json={"body": "hello?"}, headers=me)
    assert ai.status_code == 503
    assert ai.headers["content-type"] == "application/problem+json"
    assert int(ai.headers["Retry-After"]) > 0
    # Nothing was stored for a message the coach could not take.
    assert (await down.get("/v1/me/messages", headers=me)).json()["items"] == []
    ready = await down.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("failed")
    assert (await down.get("/livez")).status_code == 200
