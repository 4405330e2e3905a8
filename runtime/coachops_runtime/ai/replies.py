"""The API's side of AI replies: enqueue with the message, the daily limit, the SSE relay,
memory and usage."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from coachops_runtime.ai.repository import ReplyRepository
from coachops_runtime.ai.schemas import MemoryPublic, ProgramUsage
from coachops_runtime.ai.stream import DONE, TOKEN, read_events, stream_key
from coachops_runtime.auth.dependencies import CreatorContext, EndUserContext
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import CoachopsError, NotFound

# Short blocking reads: the runtime's Redis client has a sub-second socket timeout, and an
# entry wakes the read at once anyway.
BLOCK_MS = 300
IDLE_CHECK_SECONDS = 5.0


class DailyLimitError(CoachopsError):
    status, slug, title = 429, "daily-limit", "Daily message limit reached"


async def check_daily_limit(
    session: Session, end_user_id: uuid.UUID, program_id: uuid.UUID
) -> None:
    """``limits.messagesPerUserPerDay`` of the program: AI messages per end user per UTC day."""
    repo = ReplyRepository(session)
    limit = await repo.daily_limit(program_id)
    if limit is None:
        limit = 100  # the CRD's default, for a program row written without it
    if await repo.sent_today(end_user_id, program_id) >= limit:
        now = datetime.now(UTC)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        raise DailyLimitError(
            f"you have sent the {limit} messages a day this program allows; the coach "
            "answers again after midnight UTC",
            headers={"Retry-After": str(max(1, int((midnight - now).total_seconds())))},
        )


async def enqueue(context: EndUserContext, conversation_id: uuid.UUID, message_id: int) -> None:
    await ReplyRepository(context.session).enqueue(
        context.tenant.creator_id,
        context.program_id,
        conversation_id,
        context.end_user_id,
        message_id,
    )


async def job_for_stream(context: EndUserContext, message_id: int) -> Any:
    """The reply job of one of the end user's own messages (RLS keeps other tenants out;
    the end user check keeps other end users of the tenant out)."""
    job = await ReplyRepository(context.session).job_of_message(message_id)
    if job is None or job["end_user_id"] != context.end_user_id:
        raise NotFound("no AI reply for this message")
    return job


async def relay(
    redis: aioredis.Redis,
    job_state: Callable[[Any], Awaitable[tuple[str, Any]]],
    job: Any,
    last_event_id: str | None,
) -> AsyncIterator[dict[str, str]]:
    """SSE events of a reply from its Redis Stream, after ``last_event_id``; ends with
    ``done``. ``job_state`` is an async callable answering the job's current
    (state, reply) when the stream holds nothing new for a while, so a reply whose
    stream expired (or a job that ended without one) still ends the stream."""
    key = stream_key(job["creator_name"], job["job_id"])
    after = last_event_id or "0"
    idle = 0.0
    checked = False
    while True:
        try:
            events = await read_events(redis, key, after, block_ms=BLOCK_MS)
        except (RedisError, OSError):
            # Redis unreachable (or an id it refuses): wait as a blocking read would, and
            # let the stored state end the stream.
            await asyncio.sleep(BLOCK_MS / 1000)
            events = []
        for event in events:
            after = event.id
            yield {"id": event.id, "event": event.event, "data": event.data}
            if event.event == DONE:
                return
        if events:
            idle = 0.0
            continue
        idle += BLOCK_MS / 1000
        if idle < IDLE_CHECK_SECONDS and checked:
            continue
        idle, checked = 0.0, True
        state, reply = await job_state(job)
        if state == "pending":
            continue
        if reply is not None and after == "0":
            # Nothing was streamed to this client: the stored text, whole.
            yield {"id": "stored-1", "event": TOKEN, "data": reply["body"]}
        yield {
            "id": "stored-2",
            "event": DONE,
            "data": json.dumps(
                {
                    "message_id": None if reply is None else reply["message_id"],
                    "citations": [] if reply is None else (reply["citations"] or []),
                    "state": state,
                }
            ),
        }
        return


async def job_state(pool: asyncpg.Pool, job: Any) -> tuple[str, Any]:
    """The job's state and stored reply, in a short transaction of its own tenant."""
    async with pool.acquire() as connection:
        session = Session(connection)
        try:
            await session.set_tenant(job["creator_id"])
            repo = ReplyRepository(session)
            current = await repo.job_of_message(job["message_id"])
            if current is None:
                return "gone", None
            reply = None
            if current["reply_message_id"] is not None:
                reply = await repo.reply(current["reply_message_id"])
            return str(current["state"]), reply
        finally:
            await session.finish(commit=False)


async def memory(context: CreatorContext, conversation_id: uuid.UUID) -> MemoryPublic:
    row = await ReplyRepository(context.session).memory(conversation_id)
    if row is None:
        raise NotFound("no such conversation")
    return MemoryPublic(**row)


async def usage(context: CreatorContext, months: int) -> list[ProgramUsage]:
    now = datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    rows = await ReplyRepository(context.session).usage(first)
    return [ProgramUsage(**row) for row in rows]
