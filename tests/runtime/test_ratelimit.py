"""The GCRA limiter: against a real Redis (exact for small limits, leases for busy keys),
and its lease arithmetic alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from coachops_devstack.stack import Stack
from coachops_runtime.kit.ratelimit import CacheUnavailableError, Decision, Lease, Limiter


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
    decisions = [await limiter.hit(key, "tenant", 400) for _ in range(240)]
    assert all(d.allowed for d in decisions)
    # Leases grow to 5 % of the burst (20): far fewer round trips than requests.
    assert limiter.asked < 40
    # RateLimit's remaining counts down by one per request, leased or not.
    assert decisions[100].remaining - decisions[101].remaining in (0, 1)
    # Another replica sees what this one took, leases included.
    other = CountingLimiter(redis)
    seen = await other.hit(key, "tenant", 400)
    assert seen.allowed
    assert seen.remaining <= 400 - 240 + (time.monotonic() - started) * 400

    # Over the limit, the leases run dry and requests are refused.
    burst = [await limiter.hit(key, "tenant", 400) for _ in range(600)]
    refused = [d for d in burst if not d.allowed]
    assert refused
    assert int(refused[-1].headers()["Retry-After"]) >= 1
    # In all: the burst, plus what refilled at 400/s meanwhile, less at most one lease
    # (5 %) that expired unspent.
    allowed = 240 + 1 + sum(d.allowed for d in burst)
    refilled = (time.monotonic() - started) * 400
    assert 400 - 20 <= allowed <= 400 + refilled + 1


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


async def test_concurrent_requests_under_the_limit_are_all_allowed(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    """Concurrent asks for one key pool their leases: no token is dropped, so nothing
    under the limit is refused."""
    limiter = Limiter(redis)
    key = f"{redis_prefix}concurrent"
    for _ in range(3):  # let the lease grow first
        await limiter.hit(key, "tenant", 1000)
    decisions = await asyncio.gather(*(limiter.hit(key, "tenant", 1000) for _ in range(900)))
    assert all(d.allowed for d in decisions)


async def test_concurrent_requests_fail_together_when_redis_hangs() -> None:
    """Waiters share the one ask's failure instead of queueing behind each other's
    timeouts (50 requests, a Redis that accepts and never answers, a 1 s timeout)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hanging = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1, socket_timeout=1
    )
    limiter = Limiter(hanging)
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(limiter.hit("test:down", "tenant", 1000) for _ in range(50)),
            return_exceptions=True,
        )
    finally:
        await hanging.aclose()
        server.close()
    assert all(isinstance(r, CacheUnavailableError) for r in results), results[:3]
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- the arithmetic alone
# A Limiter on a Redis nobody listens to: these paths must not ask it (they would fail).


@pytest.fixture
def offline() -> Limiter:
    return Limiter(aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_timeout=0.1))


@pytest.mark.parametrize(
    ("rate", "cap"), [(0, 1), (1, 1), (39, 1), (40, 2), (400, 20), (1000, 50), (10_000, 500)]
)
def test_a_lease_holds_at_most_5_percent_of_the_burst(rate: int, cap: int) -> None:
    assert Limiter.lease_cap(rate) == cap


def test_a_lease_doubles_while_spent_in_time_and_shrinks_to_what_was_spent(
    offline: Limiter,
) -> None:
    now = time.monotonic()
    spent_in_time = Lease(tokens=0, size=4, granted_at=now, remaining=10, reset_ms=100)
    assert offline._next_size(spent_in_time, now + 0.01, cap=20) == 8
    assert offline._next_size(spent_in_time, now + 0.01, cap=5) == 5  # never above the cap
    expired = Lease(tokens=2, size=8, granted_at=now, remaining=10, reset_ms=100, used=6)
    later = now + Limiter.LEASE_SECONDS + 0.01
    assert offline._next_size(expired, later, cap=20) == 7  # what it spent, and this one
    idle = Lease(tokens=8, size=8, granted_at=now, remaining=10, reset_ms=100, used=0)
    assert offline._next_size(idle, later, cap=20) == 1


async def test_a_lease_is_spent_locally_and_counts_down(offline: Limiter) -> None:
    granted = time.monotonic() - 0.05
    offline._leases["k"] = Lease(tokens=3, size=4, granted_at=granted, remaining=10, reset_ms=900)
    decisions = [await offline.hit("k", "tenant", 400) for _ in range(3)]
    assert all(d.allowed for d in decisions)
    # RateLimit's remaining: what Redis had left plus the tokens still leased.
    assert [d.remaining for d in decisions] == [12, 11, 10]
    # The reset moves on with the clock from what Redis said at the grant (~50 ms ago).
    assert all(790 <= d.reset_ms <= 850 for d in decisions), decisions
    assert offline._leases["k"].used == 3
    assert offline._leases["k"].tokens == 0
    with pytest.raises(CacheUnavailableError):  # spent: the next request asks Redis
        await offline.hit("k", "tenant", 400)


async def test_an_expired_lease_is_not_spent(offline: Limiter) -> None:
    stale = time.monotonic() - Limiter.LEASE_SECONDS - 0.01
    offline._leases["k"] = Lease(tokens=5, size=8, granted_at=stale, remaining=10, reset_ms=900)
    with pytest.raises(CacheUnavailableError):
        await offline.hit("k", "tenant", 400)
    assert offline._leases["k"].tokens == 5


def test_old_leases_are_dropped_when_the_table_is_full(
    offline: Limiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Limiter, "MAX_LEASES", 4)
    now = time.monotonic()
    old = now - 3 * Limiter.LEASE_SECONDS
    for key, at in (("a", old), ("b", old), ("c", now), ("d", now)):
        offline._keep(key, Lease(1, 1, at, 0, 0))
    offline._keep("e", Lease(1, 1, now, 0, 0))
    assert sorted(offline._leases) == ["c", "d", "e"]
    offline._keep("c", Lease(2, 2, now, 0, 0))  # a key already held replaces its lease
    assert offline._leases["c"].tokens == 2


@pytest.mark.parametrize(
    ("decision", "headers"),
    [
        (
            Decision(True, "tenant", 10, 1, 9, 0, 1),
            {"RateLimit-Policy": '"tenant";q=10;w=1', "RateLimit": '"tenant";r=9;t=1'},
        ),
        (
            Decision(True, "end-user", 5, 1, 0, 0, 1001),
            {"RateLimit-Policy": '"end-user";q=5;w=1', "RateLimit": '"end-user";r=0;t=2'},
        ),
        (
            Decision(False, "tenant", 10, 1, 0, 40, 1000),
            {
                "RateLimit-Policy": '"tenant";q=10;w=1',
                "RateLimit": '"tenant";r=0;t=1',
                "Retry-After": "1",  # never 0: a client would retry at once
            },
        ),
        (
            Decision(False, "tenant", 1, 60, 0, 59_001, 60_000),
            {
                "RateLimit-Policy": '"tenant";q=1;w=60',
                "RateLimit": '"tenant";r=0;t=60',
                "Retry-After": "60",
            },
        ),
    ],
)
def test_headers(decision: Decision, headers: dict[str, str]) -> None:
    assert decision.headers() == headers
