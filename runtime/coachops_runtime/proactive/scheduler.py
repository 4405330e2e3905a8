"""The scheduler poller: claims due schedules in batches and hands each to the engine.

A batch is one transaction: ``claim_proactive`` locks up to ``batch_size`` due schedules
of any tenant with ``FOR UPDATE SKIP LOCKED`` (so replicas take disjoint batches), then
tenant by tenant the rows are read and locked under RLS, handled in one fixed order
(tenant, end user, program), which keeps the per-end-user locks of two replicas from
crossing, and their writes flushed together (writes.py). The batch runs under one
savepoint; when a schedule fails, the batch is rolled back to it and handled again with a
savepoint per schedule, and the failing one is looked at again a few minutes later, so
one bad row cannot hold back the rest. Killing a replica
at any moment rolls its batch back: nothing it did is visible and the schedules are due
again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from coachops_runtime.kit.db import Session
from coachops_runtime.kit.metrics import PROACTIVE_LAG_SECONDS, PROACTIVE_OUTCOMES
from coachops_runtime.proactive.clock import Clock
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.repository import CLAIM, ProactiveRepository
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.timing import local_date, zone_of
from coachops_runtime.proactive.writes import SendKey
from coachops_runtime.worker.claims import claim_by_tenant

log = logging.getLogger("coachops.worker.proactive")

RETRY_FAILED = timedelta(minutes=5)
# What a batch did: (kind, outcome, seconds late) per schedule, counted once it commits.
Results = list[tuple[str, str, float | None]]
HANDLED_ERRORS = (asyncpg.PostgresError, ValueError, KeyError, TypeError)


class ProactivePoller:
    name = "proactive"

    def __init__(
        self, pool: asyncpg.Pool, settings: ProactiveSettings, engine: Engine, clock: Clock
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.engine = engine
        self.clock = clock

    async def poll(self) -> int:
        """Handle due schedules until none is left, ``concurrency`` batches at once after
        the first; returns how many schedules were handled."""
        first = await self.run_batch()
        if first == 0:
            return 0  # an idle poll is one claim
        counts = await asyncio.gather(
            *(self._lane() for _ in range(self.settings.concurrency)), return_exceptions=True
        )
        for count in counts:
            if isinstance(count, BaseException):
                raise count
        return first + sum(c for c in counts if isinstance(c, int))

    async def _lane(self) -> int:
        handled = 0
        while count := await self.run_batch():
            handled += count
        return handled

    async def run_batch(self) -> int:
        results: Results = []
        async with self.pool.acquire() as connection:
            session = Session(connection)
            try:
                handled = await self._batch(session, self.clock.now(), results)
            except BaseException:
                await session.finish(commit=False)
                raise
            await session.finish(commit=True)
        for kind, outcome, late in results:
            PROACTIVE_OUTCOMES.labels(kind, outcome).inc()
            if late is not None:
                PROACTIVE_LAG_SECONDS.observe(max(late, 0.0))
        return handled

    async def _batch(self, session: Session, now: datetime, results: Results) -> int:
        claimed = await claim_by_tenant(session, CLAIM, now, self.settings.batch_size)
        if not claimed:
            return 0
        try:
            # Optimistically, the whole batch under one savepoint (two round trips rather
            # than two per schedule) ...
            async with session.savepoint():
                await self._handle(session, claimed, results, careful=False)
        except HANDLED_ERRORS:
            # ... and when one schedule fails, again one savepoint each, to find it.
            results.clear()
            await self._handle(session, claimed, results, careful=True)
        return sum(len(ids) for ids in claimed.values())

    async def _handle(
        self,
        session: Session,
        claimed: dict[uuid.UUID, list[int]],
        results: Results,
        *,
        careful: bool,
    ) -> None:
        # One order for every replica (tenants sorted, then each tenant's end users by
        # their lock keys, in one statement), so two batches never wait in a cycle.
        for creator_id in sorted(claimed):
            await session.set_tenant(creator_id)
            repo = ProactiveRepository(session, creator_id)
            rows = await repo.context(claimed[creator_id])
            await repo.lock_end_users(rows)
            if not careful:
                now = self.clock.now()
                await repo.prefetch_send_checks([_send_key(row, now) for row in rows])
            for row in sorted(rows, key=lambda r: (r["end_user_id"], r["program_id"])):
                now = self.clock.now()
                if careful:
                    outcome = await self._one(session, repo, row, now)
                else:
                    outcome = await self.engine.handle(repo, row, now)
                # A row never planned is due at -infinity (naive datetime.min): no lateness.
                due = row["due_at"]
                late = (now - due).total_seconds() if due and due.tzinfo else None
                results.append((row["kind"], outcome, late))
            await repo.flush()

    async def _one(
        self, session: Session, repo: ProactiveRepository, row: Any, now: datetime
    ) -> str:
        try:
            async with session.savepoint():
                outcome = await self.engine.handle(repo, row, now)
                await repo.flush()
                return outcome
        except HANDLED_ERRORS as error:
            # The schedule's own fault (a row or spec the engine cannot read); a lost
            # connection is not caught here and ends the batch.
            log.exception(
                "proactive schedule failed; looked at again later",
                extra={"schedule_id": row["schedule_id"], "error": type(error).__name__},
            )
            repo.writes.clear()
            repo.writes.defer(row, self.clock.now() + RETRY_FAILED)
            await repo.flush()
            return "failed"


def _send_key(row: Any, now: datetime) -> SendKey:
    """The send check a planned row will ask when it is due now (a row that asks another,
    e.g. one planned in this pass, is checked on its own)."""
    day = local_date(now, zone_of(row["time_zone"]))
    key = row["occurrence_key"] or ""
    return (row["program_id"], row["end_user_id"], row["kind"], row["item"], key, day)
