"""A reply's tokens on a Redis Stream, so any runtime replica can relay them as SSE.

One stream per reply job, under the tenant's Redis prefix, capped (``MAXLEN ~``) and
expiring. Entries carry ``e`` (the event: ``token``, ``reset``, ``fallback`` or ``done``)
and ``d`` (its data). Stream ids are the SSE event ids, so a client that reconnects with
``Last-Event-ID`` continues with the entry after it: no gap, no repeat. ``reset`` tells a
client to drop the text so far (the job was claimed again after its worker died and is
generated anew). The worker writes; nothing else does.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from coachops_crds.constants import tenant_redis_prefix

TOKEN, RESET, FALLBACK, DONE = "token", "reset", "fallback", "done"
log = logging.getLogger("coachops.worker.ai")


def stream_key(creator_name: str, job_id: uuid.UUID) -> str:
    return f"{tenant_redis_prefix(creator_name)}reply:{job_id}"


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: str


class ReplyStream:
    """The writer of one reply's stream. ``send`` only queues an entry: one task writes
    what has gathered in a single round trip (a pipeline without MULTI: the entries, then
    the key's expiry), so generation never waits for Redis and a fast model costs fewer
    round trips than pieces. ``flush`` waits until everything queued is written. Writes
    are best effort: a reply is stored whole even when Redis loses its stream."""

    def __init__(
        self, redis: aioredis.Redis, key: str, *, max_events: int, ttl_seconds: int
    ) -> None:
        self.redis = redis
        self.key = key
        self.max_events = max_events
        self.ttl = ttl_seconds
        self._queue: list[tuple[str, str]] = []
        self._writer: asyncio.Task[None] | None = None

    def send(self, event: str, data: str) -> None:
        self._queue.append((event, data))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for event, data in batch:
                        pipe.xadd(
                            self.key,
                            {"e": event, "d": data},
                            maxlen=self.max_events,
                            approximate=True,
                        )
                    pipe.expire(self.key, self.ttl)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                log.warning(
                    "stream write failed", extra={"entries": len(batch), "error": str(error)[:200]}
                )

    async def flush(self) -> None:
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def add(self, event: str, data: str) -> None:
        """Queue an entry and wait until it is written."""
        self.send(event, data)
        await self.flush()


async def read_events(
    redis: aioredis.Redis, key: str, after: str, *, block_ms: int
) -> Sequence[Event]:
    """Entries after ``after`` ("0" for all), waiting up to ``block_ms`` for the first."""
    answer: Any = await redis.xread({key: after}, count=200, block=block_ms)
    events: list[Event] = []
    for _name, entries in answer or []:
        for entry_id, fields in entries:
            events.append(
                Event(_text(entry_id), _text(fields.get(b"e", b"")), _text(fields.get(b"d", b"")))
            )
    return events


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
