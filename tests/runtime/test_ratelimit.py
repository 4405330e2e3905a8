"""The GCRA limiter against a real Redis: exact for small limits, leases for busy keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from coachops_devstack.stack import Stack
from coachops_runtime.kit.ratelimit import Limiter


class CountingLimiter(Limiter):
    """Counts the round trips to Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.asked = 0
        script = self._gcra

        async def counted(**kwargs: Any) -> Any:
            self.asked += 1
            return await script(**kwargs)

        self._gcra = counted  # type: ignore[assignment]


@pytest.fixture
async def redis(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(stack.redis.url)
    yield client
    await client.aclose()


async def test_small_limits_ask_redis_every_time(redis: aioredis.Redis, redis_prefix: str) -> None:
    limiter = CountingLimiter(redis)
    decisions = [await limiter.hit(f"{redis_prefix}small", "tenant", 10) for _ in range(15)]
    allowed = [d.allowed for d in decisions]
    assert allowed[:10] == [True] * 10
    assert allowed.count(True) <= 11  # one may have refilled while the loop ran
    assert limiter.asked == 15
    refused = next(d for d in decisions if not d.allowed)
    assert refused.retry_after_ms > 0
    assert refused.headers()["Retry-After"] == "1"
    assert [d.remaining for d in decisions[:3]] == [9, 8, 7]


async def test_busy_keys_lease_tokens_but_keep_the_limit(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = CountingLimiter(redis)
    key = f"{redis_prefix}busy"
    started = time.monotonic()
    decisions = [await limiter.hit(key, "tenant", 1000) for _ in range(600)]
    assert all(d.allowed for d in decisions)
    # Leases grow to 5 % of the burst: far fewer round trips than requests.
    assert limiter.asked < 60
    # RateLimit's remaining counts down by one per request, leased or not.
    assert decisions[100].remaining - decisions[101].remaining in (0, 1)
    # Another replica sees what this one took, leases included.
    other = CountingLimiter(redis)
    seen = await other.hit(key, "tenant", 1000)
    assert seen.allowed
    assert seen.remaining <= 1000 - 600 + (time.monotonic() - started) * 1000

    # Over the limit, the leases run dry and requests are refused.
    burst = [await limiter.hit(key, "tenant", 1000) for _ in range(1500)]
    assert not burst[-1].allowed
    assert int(burst[-1].headers()["Retry-After"]) >= 1
    # In all: the burst, plus what refilled at 1000/s meanwhile, less at most one lease
    # (5 %) that expired unspent.
    allowed = 600 + 1 + sum(d.allowed for d in burst)
    refilled = (time.monotonic() - started) * 1000
    assert 1000 - 50 <= allowed <= 1000 + refilled + 1


async def test_concurrent_replicas_share_one_limit(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    key = f"{redis_prefix}shared"
    replicas = [Limiter(redis) for _ in range(3)]

    async def spend(limiter: Limiter) -> int:
        return sum([(await limiter.hit(key, "tenant", 200)).allowed for _ in range(300)])

    started = time.monotonic()
    allowed = sum(await asyncio.gather(*(spend(r) for r in replicas)))
    refilled = (time.monotonic() - started) * 200
    # 900 requests against a burst of 200: the limit holds across replicas, give or take
    # what refills at 200/s while they run.
    assert 200 <= allowed <= 200 + refilled + 1
