"""Rate limits (GCRA) and monthly quotas, atomic in Redis via Lua scripts.

GCRA keeps one timestamp per key (the theoretical arrival time, in microseconds), uses
Redis' own clock so replicas agree, and answers with what the ``RateLimit`` and
``RateLimit-Policy`` headers need.

A busy key does not cost a Redis round trip per request: the script hands out up to
``n`` tokens at once (a lease) and the replica spends them locally for at most
``LEASE_SECONDS``. The lease grows with the key's local demand and never exceeds
``LEASE_SHARE`` of the burst, so a replica can hold back at most that much of a limit from
the others, and only for that long; limits below 1 / LEASE_SHARE per window are exact,
every request asks Redis. Tokens a lease did not use expire with it: counted, not spent.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# Takes up to ARGV[3] tokens; answers {granted, remaining, retry_after_us, reset_us}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local available = math.floor((now + burst * interval - tat) / interval)
if available < 1 then
  return {0, 0, tat + interval - burst * interval - now, tat - now}
end
local granted = math.min(wanted, available)
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1)
local remaining = math.floor((now + burst * interval - new_tat) / interval)
return {granted, remaining, 0, new_tat - now}
"""

_QUOTA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[2]) > tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, used}
"""


class CacheUnavailableError(RuntimeError):
    """Redis did not answer."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: str
    limit: int
    window: int
    remaining: int
    retry_after_ms: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window}',
            "RateLimit": (
                f'"{self.policy}";r={self.remaining};t={math.ceil(self.reset_ms / 1000)}'
            ),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
        return headers


@dataclass(frozen=True)
class QuotaResult:
    allowed: bool
    used: int
    limit: int


@dataclass
class Lease:
    """Tokens one key holds locally, and what Redis said when it granted them."""

    tokens: int
    size: int  # how many were asked for
    granted_at: float  # time.monotonic()
    remaining: int  # left in Redis after the grant
    reset_ms: int
    used: int = 0

    @property
    def expires(self) -> float:
        return self.granted_at + Limiter.LEASE_SECONDS


class Limiter:
    """Keys are given whole: callers put them under the tenant's Redis prefix."""

    LEASE_SECONDS = 0.1
    LEASE_SHARE = 0.05
    MAX_LEASES = 10_000

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._gcra = redis.register_script(_GCRA)
        self._quota = redis.register_script(_QUOTA)
        self._leases: dict[str, Lease] = {}
        self._asking: dict[str, asyncio.Future[None]] = {}

    async def hit(self, key: str, policy: str, rate: int, window: int = 1) -> Decision:
        """One request against ``rate`` per ``window`` seconds (burst: one window's worth)."""
        cap = self.lease_cap(rate)
        while True:
            now = time.monotonic()
            lease = self._leases.get(key)
            if lease is not None and lease.tokens > 0 and now < lease.expires:
                lease.tokens -= 1
                lease.used += 1
                reset_ms = lease.reset_ms - int((now - lease.granted_at) * 1000)
                remaining = lease.remaining + lease.tokens
                return Decision(True, policy, rate, window, remaining, 0, max(0, reset_ms))
            asking = self._asking.get(key)
            if asking is None:
                break
            # One ask per leased key at a time: concurrent requests wait for its lease
            # instead of each asking Redis (and fail at once with it when Redis is down).
            await asyncio.shield(asking)
        wanted = 1 if lease is None or cap == 1 else self._next_size(lease, now, cap)
        if cap > 1:
            asking = asyncio.get_running_loop().create_future()
            self._asking[key] = asking
        interval = max(1, (window * 1_000_000) // max(rate, 1))  # microseconds
        try:
            answer = await self._gcra(keys=[key], args=[interval, rate, wanted])
        except (RedisError, OSError) as error:
            failure = CacheUnavailableError(str(error))
            if asking is not None:
                asking.set_exception(failure)
                asking.exception()  # the waiters re-raise it; none may be waiting
            raise failure from error
        finally:
            if asking is not None:
                del self._asking[key]
                if not asking.done():
                    asking.set_result(None)
        granted, remaining, retry_ms, reset_ms = (
            int(answer[0]),
            int(answer[1]),
            int(answer[2]) // 1000,
            int(answer[3]) // 1000,
        )
        if cap > 1:  # one token is this request's; the rest is the lease
            spare = max(0, granted - 1)
            self._keep(key, Lease(spare, wanted, now, remaining, reset_ms))
            remaining += spare
        return Decision(granted > 0, policy, rate, window, remaining, retry_ms, reset_ms)

    @classmethod
    def lease_cap(cls, rate: int) -> int:
        """The most tokens one lease may hold: LEASE_SHARE of the burst, at least 1 (a cap
        of 1 means no lease: every request asks Redis)."""
        return max(1, int(rate * cls.LEASE_SHARE))

    def _next_size(self, lease: Lease, now: float, cap: int) -> int:
        """Twice the last lease if it was spent before it expired, else what was spent."""
        if now < lease.expires:
            return min(cap, 2 * lease.size)
        return max(1, min(cap, lease.used + 1))

    def _keep(self, key: str, lease: Lease) -> None:
        if len(self._leases) >= self.MAX_LEASES and key not in self._leases:
            horizon = time.monotonic() - 2 * self.LEASE_SECONDS
            self._leases = {k: v for k, v in self._leases.items() if v.granted_at > horizon}
        self._leases[key] = lease

    async def consume_quota(self, key: str, limit: int, cost: int = 1) -> QuotaResult:
        """Atomically take ``cost`` from a monthly counter unless that would exceed ``limit``."""
        try:
            allowed, used = await self._quota(keys=[key], args=[limit, cost, 40 * 24 * 3600])
        except (RedisError, OSError) as error:
            raise CacheUnavailableError(str(error)) from error
        return QuotaResult(bool(allowed), int(used), limit)

    async def quota_used(self, key: str) -> int:
        try:
            value = await self.redis.get(key)
        except (RedisError, OSError) as error:
            raise CacheUnavailableError(str(error)) from error
        return int(value or 0)
