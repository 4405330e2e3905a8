"""The retention purge: a worker poller that deletes messages past their program's limit.

A program's ``spec.retention.messageDays`` (0: forever) reaches PostgreSQL with the rest of
its spec; migration 0011 mirrors the programs with a limit into ``retention_programs``.
Once per ``interval_seconds`` the poller takes each of them under its tenant:

1. the cutoff is the start of the UTC day ``messageDays`` days before today, so whole days
   go and a day is never half counted;
2. in one transaction, the daily analytics figures of every day before the cutoff that
   still has messages are stored in ``message_days`` (``/v1/analytics/daily`` reads them
   for days without messages), before any of its messages is deleted;
3. messages before the cutoff, then finished channel deliveries (which copy their text),
   are deleted ``batch_size`` rows per transaction, each committed at once, so no lock is
   held for long and a purge stopped midway resumes on the next run;
4. one audit entry (actor ``system``) per program that lost rows, with the counts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from coachops_runtime.audit.service import record_system
from coachops_runtime.kit.context import tenant_id_var
from coachops_runtime.kit.db import Session
from coachops_runtime.retention.repository import RetentionRepository
from coachops_runtime.retention.settings import RetentionSettings

log = logging.getLogger("coachops.worker.retention")


def cutoff(now: datetime, message_days: int) -> datetime:
    """The first moment kept: midnight UTC, ``message_days`` days before today."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=message_days)


@dataclass
class PurgeStats:
    """What the last run did, for logs and the benchmark."""

    programs: int = 0
    days_kept: int = 0
    messages: int = 0
    deliveries: int = 0
    transactions: int = 0
    longest_transaction_seconds: float = 0.0
    longest_batch_seconds: float = 0.0  # a delete batch: the longest any row lock is held


class RetentionPoller:
    name = "retention-purge"

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: RetentionSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.settings = settings or RetentionSettings()
        self.clock = clock
        self.last_run: float | None = None
        self.stats = PurgeStats()

    async def poll(self) -> int:
        """Purge every program once per interval; the rows deleted (0 between runs)."""
        since = None if self.last_run is None else time.monotonic() - self.last_run
        if since is not None and since < self.settings.interval_seconds:
            return 0
        self.last_run = time.monotonic()
        return await self.run()

    async def run(self) -> int:
        """One purge of every program with a limit, now."""
        self.stats = PurgeStats()
        async with self._transaction(None) as session:
            programs = await RetentionRepository(session).programs()
        for program in programs:
            await self.purge_program(
                program["creator_id"], program["program_id"], program["message_days"]
            )
        if self.stats.messages or self.stats.deliveries:
            log.info(
                "retention purge",
                extra={
                    "programs": self.stats.programs,
                    "messages": self.stats.messages,
                    "deliveries": self.stats.deliveries,
                    "longest_transaction_ms": round(
                        self.stats.longest_transaction_seconds * 1000, 1
                    ),
                },
            )
        return self.stats.messages + self.stats.deliveries

    async def purge_program(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, message_days: int
    ) -> None:
        limit = cutoff(self.clock(), message_days)
        self.stats.programs += 1
        async with self._transaction(creator_id) as session:
            self.stats.days_kept += await RetentionRepository(session).keep_days(
                creator_id, program_id, limit
            )
        size = self.settings.batch_size
        messages = await self._batches(
            creator_id, lambda r: r.delete_messages(creator_id, program_id, limit, size)
        )
        deliveries = await self._batches(
            creator_id, lambda r: r.delete_deliveries(creator_id, program_id, limit, size)
        )
        self.stats.messages += messages
        self.stats.deliveries += deliveries
        if messages or deliveries:
            async with self._transaction(creator_id) as session:
                await record_system(
                    session,
                    creator_id,
                    "retention.purge",
                    "program",
                    program_id,
                    {
                        "before": limit.isoformat(),
                        "messages": messages,
                        "deliveries": deliveries,
                    },
                )

    async def _batches(
        self, creator_id: uuid.UUID, delete: Callable[[RetentionRepository], Awaitable[int]]
    ) -> int:
        """Run ``delete`` (one batch) in its own transaction until a batch comes up short."""
        total = 0
        while True:
            started = time.perf_counter()
            async with self._transaction(creator_id) as session:
                deleted = await delete(RetentionRepository(session))
            self.stats.longest_batch_seconds = max(
                self.stats.longest_batch_seconds, time.perf_counter() - started
            )
            total += deleted
            if deleted < self.settings.batch_size:
                return total

    @asynccontextmanager
    async def _transaction(self, creator_id: uuid.UUID | None) -> AsyncIterator[Session]:
        async with self.pool.acquire() as connection:
            session = Session(connection)
            if creator_id is not None:
                await session.set_tenant(creator_id)
                tenant_id_var.set(str(creator_id))
            started = time.perf_counter()
            try:
                yield session
            except BaseException:
                await session.finish(commit=False)
                raise
            await session.finish(commit=True)
            elapsed = time.perf_counter() - started
            self.stats.transactions += 1
            self.stats.longest_transaction_seconds = max(
                self.stats.longest_transaction_seconds, elapsed
            )
