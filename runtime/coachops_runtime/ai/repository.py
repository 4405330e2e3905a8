"""SQL of the reply pipeline, always under the tenant bound to the session (RLS).

``JobRepository`` is the worker's: after the cross-tenant claim (SECURITY DEFINER,
migration 0007) every statement runs with the claimed job's tenant bound, so a job id of
another tenant finds nothing. ``ReplyRepository`` serves the API's requests.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from coachops_runtime.kit.db import Session

# ---------------------------------------------------------------- the worker

_CLAIM = "SELECT creator_id, job_id, attempts FROM claim_reply_job($1)"
# ``time_zone``: the end user's, else the program's spec.proactive.timeZone, else UTC.
_CONTEXT = """
SELECT j.job_id, j.creator_id, j.program_id, j.conversation_id, j.end_user_id, j.message_id,
       j.attempts, j.fallback_message_id, j.created_at, m.body AS message, v.ai_paused,
       c.name AS creator_name, p.name AS program_name, p.spec, p.deleted_at, u.display_name,
       coalesce(u.time_zone, p.spec->'proactive'->>'timeZone', 'UTC') AS time_zone, u.locale,
       extract(epoch FROM clock_timestamp() - j.created_at) * 1000 AS queued_ms,
       coalesce(cm.summary, '') AS summary,
       (SELECT k.ciphertext FROM provider_credentials k
        WHERE k.program_id = j.program_id) AS provider_key,
       (SELECT count(*) FROM messages x
        WHERE x.conversation_id = j.conversation_id AND x.author <> 'system'
          AND x.message_id > coalesce(cm.through_message_id, 0)) AS unsummarized
FROM reply_jobs j
JOIN messages m ON m.message_id = j.message_id
JOIN conversations v ON v.conversation_id = j.conversation_id
JOIN programs p ON p.program_id = j.program_id
JOIN creators c ON c.creator_id = j.creator_id
JOIN end_users u ON u.end_user_id = j.end_user_id
LEFT JOIN conversation_memory cm ON cm.conversation_id = j.conversation_id
WHERE j.job_id = $1 AND j.state = 'pending'
"""
# The turns before the message, newest first, in the conversation's order: a reply sits
# right after the message it answers (its id may be higher than later messages').
# Fallback notices are not conversation.
_HISTORY = """
SELECT message_id, author, body FROM messages
WHERE conversation_id = $1 AND message_id <> $2 AND author <> 'system'
  AND coalesce(reply_to, message_id) < $2
ORDER BY coalesce(reply_to, message_id) DESC, message_id DESC LIMIT $3
"""
_MEMORY = (
    "SELECT summary, through_message_id, updated_at FROM conversation_memory"
    " WHERE conversation_id = $1"
)
_SAVE_MEMORY = """
INSERT INTO conversation_memory (conversation_id, creator_id, summary, through_message_id)
SELECT conversation_id, creator_id, $2, $3 FROM conversations WHERE conversation_id = $1
ON CONFLICT (conversation_id) DO UPDATE SET summary = EXCLUDED.summary,
    through_message_id = EXCLUDED.through_message_id, updated_at = now()
WHERE conversation_memory.through_message_id < EXCLUDED.through_message_id
"""
_UNSUMMARIZED = """
SELECT message_id, author, body FROM messages
WHERE conversation_id = $1 AND message_id > $2 AND author <> 'system'
ORDER BY message_id
"""
_INSERT_REPLY = """
INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id, direction,
                      author, kind, body, reply_to, citations, prompt_tokens,
                      completion_tokens, model)
SELECT creator_id, conversation_id, program_id, end_user_id, 'out', $3, 'chat', $4, $2,
       $5::jsonb, $6, $7, $8
FROM conversations WHERE conversation_id = $1
ON CONFLICT (reply_to) WHERE author = 'ai' AND reply_to IS NOT NULL DO NOTHING
RETURNING message_id
"""
# The AI reply and the conversation's touch in one statement (a data-modifying CTE runs
# to completion whether or not its output is read).
_STORE_REPLY = f"""
WITH touched AS (
    UPDATE conversations SET last_message_at = now(), ai_unavailable_since = NULL
    WHERE conversation_id = $1 RETURNING conversation_id
), inserted AS ({_INSERT_REPLY.strip()})
SELECT message_id FROM inserted
"""
_EXISTING_REPLY = (
    "SELECT message_id FROM messages WHERE reply_to = $1 AND author = 'ai' AND reply_to IS NOT NULL"
)
_FLAG = (
    "UPDATE conversations SET last_message_at = now(),"
    " ai_unavailable_since = coalesce(ai_unavailable_since, now()) WHERE conversation_id = $1"
)
_DONE = """
UPDATE reply_jobs SET state = 'done', reply_message_id = $2, attempts = $3, last_error = NULL,
    prompt = coalesce($4::jsonb, prompt), finished_at = now(), updated_at = now()
WHERE job_id = $1 AND state = 'pending'
"""
_SKIPPED = """
UPDATE reply_jobs SET state = 'skipped', attempts = $2, last_error = $3, finished_at = now(),
    updated_at = now()
WHERE job_id = $1 AND state = 'pending'
"""
_FAILED = """
UPDATE reply_jobs SET state = 'failed', attempts = $2, last_error = $3, finished_at = now(),
    updated_at = now()
WHERE job_id = $1 AND state = 'pending'
"""
_RETRY = """
UPDATE reply_jobs SET attempts = $2, last_error = $3, fallback_message_id =
    coalesce(fallback_message_id, $4), next_attempt_at = now() + make_interval(secs => $5),
    updated_at = now()
WHERE job_id = $1 AND state = 'pending'
"""
# A job of this tenant whose context did not resolve: it names rows the tenant cannot see.
_ORPHANED = """
UPDATE reply_jobs SET state = 'failed', last_error = 'the job refers to rows this tenant does'
    || ' not have', finished_at = now(), updated_at = now()
WHERE job_id = $1 AND state = 'pending'
"""


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def claim(self, lease_seconds: float) -> tuple[uuid.UUID, uuid.UUID, int] | None:
        row = await self.session.one_or_none(_CLAIM, lease_seconds)
        return None if row is None else (row["creator_id"], row["job_id"], row["attempts"])

    async def context(self, job_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_CONTEXT, job_id)

    async def history(self, conversation_id: uuid.UUID, before: int, limit: int) -> list[Any]:
        """Up to ``limit`` turns before message ``before``, oldest first."""
        rows = await self.session.all(_HISTORY, conversation_id, before, limit)
        return list(reversed(rows))

    async def memory(self, conversation_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_MEMORY, conversation_id)

    async def unsummarized(self, conversation_id: uuid.UUID, after: int) -> list[Any]:
        return await self.session.all(_UNSUMMARIZED, conversation_id, after)

    async def save_memory(self, conversation_id: uuid.UUID, summary: str, through: int) -> None:
        await self.session.execute(_SAVE_MEMORY, conversation_id, summary, through)

    async def store_reply(
        self,
        job: Any,
        *,
        author: str,
        body: str,
        citations: list[dict[str, Any]] | None,
        usage: tuple[int, int] | None,
        model: str | None,
    ) -> int:
        """The reply's message id: the new one, or the one already stored for the message
        (the unique index lets only one AI reply per inbound message exist)."""
        prompt_tokens, completion_tokens = usage if usage is not None else (None, None)
        stored = await self.session.scalar(
            _STORE_REPLY,
            job["conversation_id"],
            job["message_id"],
            author,
            body,
            None if citations is None else json.dumps(citations),
            prompt_tokens,
            completion_tokens,
            model,
        )
        if stored is None:
            stored = await self.session.scalar(_EXISTING_REPLY, job["message_id"])
        return int(stored)

    async def store_fallback(self, job: Any, body: str) -> int:
        message_id = await self.session.scalar(
            _INSERT_REPLY, job["conversation_id"], job["message_id"], "system", body,
            None, None, None, None,
        )  # fmt: skip
        await self.session.execute(_FLAG, job["conversation_id"])
        return int(message_id)

    async def done(
        self,
        job_id: uuid.UUID,
        reply_id: int,
        attempts: int,
        prompt: dict[str, Any] | None = None,
    ) -> None:
        """Finish the job, keeping ``prompt`` (the debugging record) when given."""
        await self.session.execute(
            _DONE, job_id, reply_id, attempts, None if prompt is None else json.dumps(prompt)
        )

    async def skipped(self, job_id: uuid.UUID, attempts: int, reason: str) -> None:
        await self.session.execute(_SKIPPED, job_id, attempts, reason)

    async def failed(self, job_id: uuid.UUID, attempts: int, reason: str) -> None:
        await self.session.execute(_FAILED, job_id, attempts, reason[:1000])

    async def retry(
        self,
        job_id: uuid.UUID,
        attempts: int,
        reason: str,
        fallback_id: int | None,
        delay: float,
    ) -> None:
        await self.session.execute(_RETRY, job_id, attempts, reason[:1000], fallback_id, delay)

    async def orphaned(self, job_id: uuid.UUID) -> bool:
        """Fail a pending job of this tenant whose context does not resolve; False when the
        tenant has no such pending job (another tenant's, or finished)."""
        return str(await self.session.execute(_ORPHANED, job_id)).endswith(" 1")


# ---------------------------------------------------------------- the API

# The NOTIFY is delivered when the request's transaction commits (never for a rollback):
# it wakes an idle worker. Its payload names nothing.
_ENQUEUE = """
WITH job AS (
    INSERT INTO reply_jobs (creator_id, program_id, conversation_id, end_user_id, message_id)
    VALUES ($1, $2, $3, $4, $5) RETURNING job_id
)
SELECT job_id, pg_notify('coachops_reply_jobs', '') FROM job
"""
_TODAY = """
SELECT count(*) FROM reply_jobs
WHERE end_user_id = $1 AND program_id = $2
  AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
"""
_DAILY_LIMIT = (
    "SELECT (spec -> 'limits' ->> 'messagesPerUserPerDay')::integer FROM programs"
    " WHERE program_id = $1"
)
_JOB_OF_MESSAGE = """
SELECT j.job_id, j.creator_id, j.message_id, j.state, j.reply_message_id,
       j.fallback_message_id, j.conversation_id, j.end_user_id, c.name AS creator_name
FROM reply_jobs j JOIN creators c ON c.creator_id = j.creator_id
WHERE j.message_id = $1
"""
_REPLY = "SELECT message_id, body, citations FROM messages WHERE message_id = $1 AND author = 'ai'"
_PROGRAM = """
SELECT p.program_id, p.spec,
       (SELECT k.ciphertext FROM provider_credentials k
        WHERE k.program_id = p.program_id) AS provider_key
FROM programs p WHERE p.name = $1 AND p.deleted_at IS NULL
"""
_CONVERSATION_MEMORY = """
SELECT v.conversation_id, coalesce(m.summary, '') AS summary,
       coalesce(m.through_message_id, 0) AS through_message_id, m.updated_at
FROM conversations v LEFT JOIN conversation_memory m ON m.conversation_id = v.conversation_id
WHERE v.conversation_id = $1
"""
_USAGE = """
SELECT p.name AS program, to_char(date_trunc('month', m.created_at AT TIME ZONE 'UTC'),
       'YYYY-MM') AS month, count(*) AS replies,
       coalesce(sum(m.prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(m.completion_tokens), 0) AS completion_tokens
FROM messages m JOIN programs p ON p.program_id = m.program_id
WHERE m.author = 'ai' AND m.created_at >= $1
GROUP BY 1, 2 ORDER BY 2 DESC, 1
"""


class ReplyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def enqueue(
        self,
        creator_id: uuid.UUID,
        program_id: uuid.UUID,
        conversation_id: uuid.UUID,
        end_user_id: uuid.UUID,
        message_id: int,
    ) -> uuid.UUID:
        job_id = await self.session.scalar(
            _ENQUEUE, creator_id, program_id, conversation_id, end_user_id, message_id
        )
        return uuid.UUID(str(job_id))

    async def sent_today(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> int:
        return int(await self.session.scalar(_TODAY, end_user_id, program_id))

    async def daily_limit(self, program_id: uuid.UUID) -> int | None:
        value = await self.session.scalar(_DAILY_LIMIT, program_id)
        return None if value is None else int(value)

    async def job_of_message(self, message_id: int) -> Any | None:
        return await self.session.one_or_none(_JOB_OF_MESSAGE, message_id)

    async def reply(self, message_id: int) -> Any | None:
        return await self.session.one_or_none(_REPLY, message_id)

    async def memory(self, conversation_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_CONVERSATION_MEMORY, conversation_id)

    async def program(self, name: str) -> Any | None:
        return await self.session.one_or_none(_PROGRAM, name)

    async def usage(self, since: Any) -> list[Any]:
        return await self.session.all(_USAGE, since)
