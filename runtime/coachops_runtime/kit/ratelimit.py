"""Rate limits (GCRA) and monthly quotas, atomic in Redis via Lua scripts.

GCRA keeps one timestamp per key (the theoretical arrival time, in microseconds), uses
Redis' own clock so replicas agree, and answers with what the ``RateLimit`` and
``RateLimit-Policy`` headers need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1)
local remaining = math.floor((now + burst * interval - new_tat) / interval)
return {1, remaining, 0, new_tat - now}
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


class Limiter:
    """Keys are given whole: callers put them under the tenant's Redis prefix."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._gcra = redis.register_script(_GCRA)
        self._quota = redis.register_script(_QUOTA)

    async def hit(self, key: str, policy: str, rate: int, window: int = 1) -> Decision:
        """One request against ``rate`` per ``window`` seconds (burst: one window's worth)."""
        interval = max(1, (window * 1_000_000) // max(rate, 1))  # microseconds
        try:
            allowed, remaining, retry_us, reset_us = await self._gcra(
                keys=[key], args=[interval, rate]
            )
        except (RedisError, OSError) as error:
            raise CacheUnavailableError(str(error)) from error
        return Decision(
            bool(allowed),
            policy,
            rate,
            window,
            int(remaining),
            int(retry_us) // 1000,
            int(reset_us) // 1000,
        )

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
