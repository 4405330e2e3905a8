"""Rate limits and quotas from the plan, atomic in Redis; and what happens without Redis."""

from __future__ import annotations

import time
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


async def test_each_end_user_may_make_5_requests_per_second(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("eurl", plan={"requestsPerSecond": 1000})
    first = await _enrolled_end_user(client, tenants, creator)
    user = await client.post("/v1/end-users", json={}, headers=creator.headers)
    enrol = await client.post(
        f"/v1/end-users/{user.json()['end_user_id']}/enrolments",
        json={"program_id": str(creator.programs["run"])},
        headers=creator.headers,
    )
    assert enrol.status_code == 201
    token = await client.post(
        "/v1/end-user-tokens",
        json={
            "end_user_id": user.json()["end_user_id"],
            "program_id": str(creator.programs["run"]),
        },
        headers=creator.headers,
    )
    second = {"Authorization": f"Bearer {token.json()['access_token']}"}

    started = time.monotonic()
    answers = [await client.get("/v1/me", headers=first) for _ in range(12)]
    refilled = (time.monotonic() - started) * 5  # tokens back at 5 per second meanwhile
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5, statuses  # the burst is one second's worth
    assert 5 <= statuses.count(200) <= 5 + refilled + 1, (statuses, refilled)
    assert 429 in statuses
    assert answers[0].headers["RateLimit-Policy"] == '"end-user";q=5;w=1'
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.json()["type"].endswith("/rate-limited")
    assert limited.json()["detail"] == "more than 5 requests per 1 s"
    assert int(limited.headers["Retry-After"]) >= 1
    # The limit is the end user's own: another end user and the creator are not held up.
    assert (await client.get("/v1/me", headers=second)).status_code == 200
    assert (await client.get("/v1/creator", headers=creator.headers)).status_code == 200


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
