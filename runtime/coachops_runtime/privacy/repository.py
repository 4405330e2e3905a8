"""SQL of export and erasure jobs, tombstones and the claim queue (under the tenant's RLS)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from coachops_runtime.analytics.repository import DAILY_FIGURES
from coachops_runtime.kit.db import Session

_EXPORT_COLUMNS = (
    "export_id, end_user_id, format, state, progress, item_count, size_bytes, error,"
    " created_at, started_at, finished_at, expires_at, link_expires_at"
)
_ERASURE_COLUMNS = "erasure_id, state, steps, error, created_at, started_at"


@asynccontextmanager
async def tenant_session(pool: asyncpg.Pool, creator_id: uuid.UUID) -> AsyncIterator[Session]:
    """A transaction of its own bound to one tenant: committed on success."""
    async with pool.acquire() as connection:
        session = Session(connection)
        await session.set_tenant(creator_id)
        try:
            yield session
        except BaseException:
            await session.finish(commit=False)
            raise
        await session.finish(commit=True)


class PrivacyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------------ end users
    async def end_user_exists(self, end_user_id: uuid.UUID) -> bool:
        return bool(
            await self.session.scalar(
                "SELECT EXISTS (SELECT FROM end_users WHERE end_user_id = $1)", end_user_id
            )
        )

    # ------------------------------------------------------------------ exports
    async def insert_export(
        self,
        creator_id: uuid.UUID,
        end_user_id: uuid.UUID,
        fmt: str,
        requested_by: str,
        request_id: str,
    ) -> Any:
        return await self.session.one_or_none(
            "INSERT INTO export_jobs (creator_id, end_user_id, format, requested_by, request_id)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_EXPORT_COLUMNS}",
            creator_id,
            end_user_id,
            fmt,
            requested_by,
            request_id,
        )

    async def open_export(self, end_user_id: uuid.UUID, fmt: str) -> Any | None:
        """The person's newest export of that format still pending or ready to download."""
        return await self.session.one_or_none(
            f"SELECT {_EXPORT_COLUMNS} FROM export_jobs WHERE end_user_id = $1 AND format = $2"
            " AND (state = 'pending' OR (state = 'ready' AND expires_at > now()))"
            " ORDER BY created_at DESC LIMIT 1",
            end_user_id,
            fmt,
        )

    async def export(self, export_id: uuid.UUID, end_user_id: uuid.UUID | None = None) -> Any:
        return await self.session.one_or_none(
            f"SELECT {_EXPORT_COLUMNS} FROM export_jobs WHERE export_id = $1"
            " AND ($2::uuid IS NULL OR end_user_id = $2)",
            export_id,
            end_user_id,
        )

    async def set_link(self, export_id: uuid.UUID, link_hash: bytes, seconds: int) -> Any:
        return await self.session.scalar(
            "UPDATE export_jobs SET link_hash = $2,"
            " link_expires_at = least(expires_at, now() + make_interval(secs => $3))"
            " WHERE export_id = $1 AND state = 'ready' RETURNING link_expires_at",
            export_id,
            link_hash,
            float(seconds),
        )

    async def archive_for_download(self, export_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            "SELECT export_id, end_user_id, format, archive, link_hash,"
            " link_expires_at > now() AND expires_at > now() AS live"
            " FROM export_jobs WHERE export_id = $1 AND state = 'ready' FOR UPDATE",
            export_id,
        )

    async def mark_downloaded(self, export_id: uuid.UUID) -> None:
        await self.session.execute(
            "UPDATE export_jobs SET state = 'downloaded', archive = NULL, link_hash = NULL,"
            " finished_at = coalesce(finished_at, now()) WHERE export_id = $1",
            export_id,
        )

    async def start_export(self, export_id: uuid.UUID, total: int) -> None:
        await self.session.execute(
            "UPDATE export_jobs SET started_at = coalesce(started_at, now()), progress = 0,"
            " item_count = $2 WHERE export_id = $1",
            export_id,
            total,
        )

    async def export_progress(self, export_id: uuid.UUID, progress: float) -> None:
        await self.session.execute(
            "UPDATE export_jobs SET progress = $2 WHERE export_id = $1",
            export_id,
            min(1.0, max(0.0, progress)),
        )

    async def export_job(self, export_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            "SELECT export_id, end_user_id, format, state, attempts, expires_at"
            " FROM export_jobs WHERE export_id = $1",
            export_id,
        )

    async def finish_export(
        self, export_id: uuid.UUID, archive: bytes, items: int, seconds: int
    ) -> None:
        # next_attempt_at is the expiry: the row stays queued and is claimed then.
        await self.session.execute(
            "UPDATE export_jobs SET state = 'ready', archive = $2::bytea,"
            " size_bytes = length($2::bytea),"
            " item_count = $3, progress = 1, error = NULL, finished_at = now(),"
            " expires_at = now() + make_interval(secs => $4),"
            " next_attempt_at = now() + make_interval(secs => $4) WHERE export_id = $1",
            export_id,
            archive,
            items,
            float(seconds),
        )

    async def expire_export(self, export_id: uuid.UUID) -> None:
        await self.session.execute(
            "UPDATE export_jobs SET state = 'expired', archive = NULL, link_hash = NULL"
            " WHERE export_id = $1",
            export_id,
        )

    async def retry_export(
        self, export_id: uuid.UUID, error: str, seconds: float, *, failed: bool
    ) -> None:
        await self.session.execute(
            "UPDATE export_jobs SET attempts = attempts + 1, error = $2,"
            " state = CASE WHEN $4 THEN 'failed' ELSE state END,"
            " next_attempt_at = now() + make_interval(secs => $3) WHERE export_id = $1",
            export_id,
            error[:500],
            seconds,
            failed,
        )

    # ------------------------------------------------------------------ erasures
    async def request_erasure(
        self,
        creator_id: uuid.UUID,
        end_user_id: uuid.UUID,
        requested_by: str,
        request_id: str,
    ) -> Any:
        """Queue the person's erasure; a second request returns the one already queued."""
        return await self.session.one_or_none(
            "INSERT INTO erasure_jobs (creator_id, end_user_id, requested_by, request_id)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (creator_id, end_user_id) DO UPDATE SET"
            " state = 'pending', confirmation_hash = NULL, confirm_by = NULL,"
            " requested_by = CASE WHEN erasure_jobs.state = 'unconfirmed'"
            "   THEN EXCLUDED.requested_by ELSE erasure_jobs.requested_by END,"
            " request_id = CASE WHEN erasure_jobs.state = 'unconfirmed'"
            "   THEN EXCLUDED.request_id ELSE erasure_jobs.request_id END,"
            " next_attempt_at = CASE WHEN erasure_jobs.state = 'pending'"
            "   THEN erasure_jobs.next_attempt_at ELSE now() END"
            f" RETURNING {_ERASURE_COLUMNS}",
            creator_id,
            end_user_id,
            requested_by,
            request_id,
        )

    async def await_confirmation(
        self,
        creator_id: uuid.UUID,
        end_user_id: uuid.UUID,
        confirmation_hash: bytes,
        seconds: int,
        request_id: str,
    ) -> Any | None:
        """Record an end user's unconfirmed request (None: an erasure is already queued)."""
        return await self.session.one_or_none(
            "INSERT INTO erasure_jobs (creator_id, end_user_id, requested_by, request_id, state,"
            " confirmation_hash, confirm_by)"
            " VALUES ($1, $2, 'end_user', $5, 'unconfirmed', $3, now() + make_interval(secs => $4))"
            " ON CONFLICT (creator_id, end_user_id) DO UPDATE SET"
            " confirmation_hash = EXCLUDED.confirmation_hash, confirm_by = EXCLUDED.confirm_by,"
            " request_id = EXCLUDED.request_id"
            " WHERE erasure_jobs.state = 'unconfirmed'"
            " RETURNING erasure_id, confirm_by",
            creator_id,
            end_user_id,
            confirmation_hash,
            float(seconds),
            request_id,
        )

    async def unconfirmed(self, end_user_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            "SELECT erasure_id, confirmation_hash, confirm_by > now() AS live FROM erasure_jobs"
            " WHERE end_user_id = $1 AND state = 'unconfirmed' FOR UPDATE",
            end_user_id,
        )

    async def erasure(self, erasure_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            f"SELECT {_ERASURE_COLUMNS}, end_user_id FROM erasure_jobs"
            " WHERE erasure_id = $1 AND state <> 'unconfirmed'",
            erasure_id,
        )

    async def erasure_job(self, erasure_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            "SELECT erasure_id, end_user_id, state, steps, attempts FROM erasure_jobs"
            " WHERE erasure_id = $1",
            erasure_id,
        )

    async def tombstone(self, erasure_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            "SELECT erasure_id, requested_by, request_id, requested_at, completed_at, removed"
            " FROM erasure_tombstones WHERE erasure_id = $1",
            erasure_id,
        )

    async def start_erasure(self, erasure_id: uuid.UUID) -> None:
        await self.session.execute(
            "UPDATE erasure_jobs SET started_at = coalesce(started_at, now())"
            " WHERE erasure_id = $1",
            erasure_id,
        )

    async def record_step(self, erasure_id: uuid.UUID, step: str, removed: int, done: bool) -> None:
        await self.session.execute(
            "UPDATE erasure_jobs SET steps = jsonb_set(steps, ARRAY[$2::text],"
            " jsonb_build_object('removed',"
            "   coalesce((steps->$2->>'removed')::bigint, 0) + $3, 'done', $4::boolean))"
            " WHERE erasure_id = $1",
            erasure_id,
            step,
            removed,
            done,
        )

    async def table_exists(self, table: str) -> bool:
        return bool(await self.session.scalar("SELECT to_regclass($1) IS NOT NULL", table))

    async def redact_audit(self, erasure_id: uuid.UUID) -> int:
        return int(await self.session.scalar("SELECT redact_erased_end_user($1)", erasure_id))

    async def delete_batch(self, table: str, where: str, end_user_id: uuid.UUID, limit: int) -> int:
        """Delete up to ``limit`` of the person's rows of ``table`` (a name from the
        registry, never input); how many went."""
        status = await self.session.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {where} LIMIT $2))",
            end_user_id,
            limit,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def any_left(self, table: str, where: str, end_user_id: uuid.UUID) -> bool:
        return bool(
            await self.session.scalar(
                f"SELECT EXISTS (SELECT FROM {table} WHERE {where})", end_user_id
            )
        )

    async def reply_job_ids(self, end_user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.session.all(
            "SELECT job_id FROM reply_jobs WHERE end_user_id = $1", end_user_id
        )
        return [row["job_id"] for row in rows]

    async def keep_activity(self, end_user_id: uuid.UUID) -> int:
        """Fold the person's messages into ``erased_activity`` (counts only); how many
        messages were counted."""
        status = await self.session.scalar(_KEEP_ACTIVITY, end_user_id)
        return int(status or 0)

    async def finish_erasure(self, erasure_id: uuid.UUID) -> Any | None:
        """Delete the job and write its tombstone, in the caller's transaction."""
        return await self.session.one_or_none(
            "WITH gone AS (DELETE FROM erasure_jobs WHERE erasure_id = $1"
            " RETURNING erasure_id, creator_id, requested_by, request_id, created_at, steps)"
            " INSERT INTO erasure_tombstones"
            " (erasure_id, creator_id, requested_by, request_id, requested_at, removed)"
            " SELECT erasure_id, creator_id, requested_by, request_id, created_at,"
            " (SELECT coalesce(jsonb_object_agg(key, (value->>'removed')::bigint), '{}')"
            "  FROM jsonb_each(steps))"
            " FROM gone RETURNING erasure_id",
            erasure_id,
        )

    async def retry_erasure(self, erasure_id: uuid.UUID, error: str, seconds: float) -> None:
        await self.session.execute(
            "UPDATE erasure_jobs SET attempts = attempts + 1, error = $2,"
            " next_attempt_at = now() + make_interval(secs => $3) WHERE erasure_id = $1",
            erasure_id,
            error[:500],
            seconds,
        )

    # ------------------------------------------------------------------ the queue
    async def claim(self) -> Any | None:
        """The earliest due job of any tenant, locked until this transaction ends."""
        return await self.session.one_or_none("SELECT * FROM claim_privacy_job()")

    async def creator_name(self) -> str:
        return str(await self.session.scalar("SELECT name FROM creators"))


# The daily analytics' figures (the same query as /v1/analytics/daily) of one person's
# messages, added to what erased_activity holds per program and day; active_users counts
# the person once per day they wrote.
_PERSON_DAYS = DAILY_FIGURES.format(
    where="m.conversation_id IN (SELECT conversation_id FROM conversations WHERE end_user_id = $1)"
)
_KEEP_ACTIVITY = f"""
    WITH days AS ({_PERSON_DAYS}), kept AS (
      INSERT INTO erased_activity AS e (creator_id, program_id, day, messages_in,
          messages_out, active_users, check_ins_sent, check_ins_answered, ai_replies,
          prompt_tokens, completion_tokens)
      SELECT (SELECT nullif(current_setting('coachops.tenant_id', true), '')::uuid),
             program_id, day, messages_in, messages_out, active_users, check_ins_sent,
             check_ins_answered, ai_replies, prompt_tokens, completion_tokens FROM days
      ON CONFLICT (creator_id, program_id, day) DO UPDATE SET
        messages_in = e.messages_in + EXCLUDED.messages_in,
        messages_out = e.messages_out + EXCLUDED.messages_out,
        active_users = e.active_users + EXCLUDED.active_users,
        check_ins_sent = e.check_ins_sent + EXCLUDED.check_ins_sent,
        check_ins_answered = e.check_ins_answered + EXCLUDED.check_ins_answered,
        ai_replies = e.ai_replies + EXCLUDED.ai_replies,
        prompt_tokens = e.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = e.completion_tokens + EXCLUDED.completion_tokens
    )
    SELECT coalesce(sum(messages_in + messages_out), 0) FROM days
"""
