"""Erasure of one end user: a registry of per-store steps, run in order until each is done.

Every step is idempotent and records its state (done, how much it removed) in the job's
``steps``: a PostgreSQL step deletes one batch and records it in the same transaction, so
a worker killed between two batches loses nothing and repeats nothing; a Redis or Chroma
step deletes, then records (run again after a crash, it finds nothing left). Adding a
store is one entry in ``STEPS``.

The order matters: deliveries are cancelled first, so nothing more leaves for the person;
reply streams are found through the reply jobs before those go; the daily counts are
kept before the messages go; the tables no foreign key ties to the person are swept
again just before the ``end_users`` row goes, whose foreign keys cascade to anything
written about the person while the erasure ran, and to the tables the runtime may not
delete from (``consent_events``, append-only; ``email_threads``); the audit log is
rewritten last, once no request can name the person any more.

What survives, on purpose: the audit log's rows (who did what and when), with the
person's id replaced by ``erasure:<erasure id>``; ``erased_activity`` (the person's
messages as counts per program and day, no id, no text), so the creator's analytics keep
their past; the tombstone (who asked, when, the request id, what each step removed).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from coachops_runtime.privacy.person import BY_NAME
from coachops_runtime.privacy.repository import PrivacyRepository, tenant_session
from coachops_runtime.privacy.stores import PersonVectors, person_keys


@dataclass
class Erasure:
    """One erasure job's context."""

    erasure_id: uuid.UUID
    creator_id: uuid.UUID
    creator_name: str
    end_user_id: uuid.UUID
    pool: asyncpg.Pool
    redis: aioredis.Redis
    vectors: PersonVectors | None
    batch_rows: int


StepRun = Callable[[Erasure], Awaitable[tuple[int, bool]]]


@dataclass(frozen=True)
class Step:
    """One store's part: ``run`` removes a batch and returns (removed, done)."""

    name: str
    store: str  # postgresql | redis | chroma
    run: StepRun


def _rows(table: str, name: str = "") -> Step:
    entry = BY_NAME[table]
    name = name or table

    async def run(job: Erasure) -> tuple[int, bool]:
        async with tenant_session(job.pool, job.creator_id) as session:
            repo = PrivacyRepository(session)
            removed = 0
            # A table of a revision not applied (yet) holds nothing to remove.
            if await repo.table_exists(entry.table):
                removed = await repo.delete_batch(
                    entry.table, entry.where, job.end_user_id, job.batch_rows
                )
            # A short batch is the last one unless a row was skipped: one another
            # transaction updated meanwhile (a delivery being sent) has a new ctid, so the
            # DELETE's recheck passes it over; the next batch takes it.
            done = removed < job.batch_rows and not await repo.any_left(
                entry.table, entry.where, job.end_user_id
            )
            await repo.record_step(job.erasure_id, name, removed, done)
        return removed, done

    return Step(name, "postgresql", run)


async def _keep_activity(job: Erasure) -> tuple[int, bool]:
    async with tenant_session(job.pool, job.creator_id) as session:
        repo = PrivacyRepository(session)
        counted = await repo.keep_activity(job.end_user_id)
        await repo.record_step(job.erasure_id, "erased_activity", counted, True)
    return counted, True


async def _audit(job: Erasure) -> tuple[int, bool]:
    async with tenant_session(job.pool, job.creator_id) as session:
        repo = PrivacyRepository(session)
        redacted = await repo.redact_audit(job.erasure_id)
        await repo.record_step(job.erasure_id, "audit_log", redacted, True)
    return redacted, True


async def _redis(job: Erasure) -> tuple[int, bool]:
    async with tenant_session(job.pool, job.creator_id) as session:
        jobs = await PrivacyRepository(session).reply_job_ids(job.end_user_id)
    keys = await person_keys(job.redis, job.creator_name, job.end_user_id, jobs)
    removed = int(await job.redis.delete(*keys)) if keys else 0
    async with tenant_session(job.pool, job.creator_id) as session:
        await PrivacyRepository(session).record_step(job.erasure_id, "redis", removed, True)
    return removed, True


async def _chroma(job: Erasure) -> tuple[int, bool]:
    removed = 0
    if job.vectors is not None:  # no Chroma configured: the runtime wrote no vector
        removed = await job.vectors.delete_person(job.creator_name, job.end_user_id)
    async with tenant_session(job.pool, job.creator_id) as session:
        await PrivacyRepository(session).record_step(job.erasure_id, "chroma", removed, True)
    return removed, True


STEPS: tuple[Step, ...] = (
    _rows("channel_outbox"),  # pending deliveries cancelled: nothing more is sent
    _rows("email_outbox"),
    _rows("action_tokens"),  # magic links
    _rows("proactive_schedules"),  # scheduled check-ins, nudges and goal follow-ups
    Step("redis", "redis", _redis),  # before reply_jobs: their ids name the streams
    Step("chroma", "chroma", _chroma),
    Step("erased_activity", "postgresql", _keep_activity),  # before the messages go
    _rows("reply_jobs"),
    _rows("safety_events"),
    _rows("proactive_decisions"),
    _rows("messages"),
    _rows("conversation_memory"),
    _rows("conversations"),
    _rows("goals"),
    _rows("channel_identities"),
    _rows("consents"),
    _rows("enrolments"),
    _rows("export_jobs"),
    # Tables no foreign key ties to the end user, once more: a magic link or an e-mail
    # queued while the erasure ran.
    _rows("email_outbox", "email_outbox_again"),
    _rows("action_tokens", "action_tokens_again"),
    _rows("end_users"),  # its foreign keys cascade to anything written meanwhile
    # After the end user is gone no request can name them any more.
    Step("audit_log", "postgresql", _audit),  # the person's id in audit rows, replaced
)


async def run_steps(job: Erasure, state: dict[str, Any], *, pause: float = 0.0) -> None:
    """Run every step not done yet, batch after batch, pausing ``pause`` seconds between
    batches; raises what a store raises (the job is retried later)."""
    for step in STEPS:
        if (state.get(step.name) or {}).get("done"):
            continue
        while True:
            _removed, done = await step.run(job)
            if done:
                break
            if pause:
                await asyncio.sleep(pause)
