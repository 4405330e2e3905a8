"""The worker's privacy poller: builds export archives and runs erasures.

A job is claimed with ``claim_privacy_job()`` in a transaction that stays open while the
job runs (migration 0012): no other worker takes it, and a worker that dies releases it
with its connection, so the next claim resumes it at once. The job's outcome (archive
ready, job retried later, erasure finished with its tombstone) is written in that claiming
transaction; progress and erasure steps are written in transactions of their own, so a
client sees them while the job runs.

Logs name the job, its kind and tenant, never the person's data.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from coachops_runtime.audit.service import record_system
from coachops_runtime.kit.context import tenant_id_var
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.vectors import VectorStore, VectorStoreError
from coachops_runtime.privacy import export
from coachops_runtime.privacy.erasure import Erasure, run_steps
from coachops_runtime.privacy.repository import PrivacyRepository, tenant_session
from coachops_runtime.privacy.settings import PrivacySettings
from coachops_runtime.privacy.stores import PersonVectors

log = logging.getLogger("coachops.worker.privacy")
PROGRESS_EVERY = 0.5  # seconds between two progress writes of an export


class PrivacyPoller:
    name = "privacy"

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        privacy: PrivacySettings | None = None,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.privacy = privacy or PrivacySettings()
        self.redis = redis or aioredis.Redis.from_url(
            settings.redis_url.get_secret_value(), socket_connect_timeout=2, socket_timeout=10
        )
        self._owns_redis = redis is None
        self.store: VectorStore | None = None
        if settings.chroma_url:
            self.store = VectorStore(settings.chroma_url, timeout=self.privacy.timeout_seconds)

    @property
    def vectors(self) -> PersonVectors | None:
        return None if self.store is None else PersonVectors(self.store)

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
        if self._owns_redis:
            await self.redis.aclose()

    async def poll(self) -> int:
        """Run one due job; 1 when there was one."""
        async with self.pool.acquire() as connection:
            claim = Session(connection)
            try:
                handled = await self._claimed(claim)
            except BaseException:
                await claim.finish(commit=False)
                raise
            await claim.finish(commit=True)
        return int(handled)

    async def _claimed(self, claim: Session) -> bool:
        repo = PrivacyRepository(claim)
        row = await repo.claim()
        if row is None:
            return False
        creator_id: uuid.UUID = row["creator_id"]
        await claim.set_tenant(creator_id)
        tenant_id_var.set(str(creator_id))
        fields = {"job_id": str(row["job_id"]), "kind": row["kind"]}
        if row["kind"] == "export":
            await self._export(repo, creator_id, row["job_id"], fields)
        else:
            await self._erase(repo, creator_id, row["job_id"], fields)
        return True

    # ------------------------------------------------------------------ exports
    async def _export(
        self, repo: PrivacyRepository, creator_id: uuid.UUID, export_id: uuid.UUID, fields: Any
    ) -> None:
        job = await repo.export_job(export_id)
        if job is None:
            return
        if job["state"] == "ready":  # claimed at its expiry
            await repo.expire_export(export_id)
            log.info("export archive expired", extra=fields)
            return
        creator_name = await repo.creator_name()
        last = 0.0

        async def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if done == 0:
                async with tenant_session(self.pool, creator_id) as session:
                    await PrivacyRepository(session).start_export(export_id, total)
            elif now - last >= PROGRESS_EVERY or done >= total:
                async with tenant_session(self.pool, creator_id) as session:
                    await PrivacyRepository(session).export_progress(export_id, done / total)
            else:
                return
            last = now

        try:
            document, items = await export.build(
                self.pool,
                creator_id,
                creator_name,
                job["end_user_id"],
                vectors=self.vectors,
                progress=progress,
            )
        except VectorStoreError as error:
            failed = job["attempts"] + 1 >= self.privacy.max_attempts
            await repo.retry_export(
                export_id, error.reason, self.privacy.retry_seconds, failed=failed
            )
            log.warning("export waits for Chroma", extra={**fields, "failed": failed})
            return
        archive = export.encode(document, job["format"])
        await repo.finish_export(export_id, archive, items, self.privacy.archive_seconds)
        log.info("export ready", extra={**fields, "items": items, "bytes": len(archive)})

    # ------------------------------------------------------------------ erasures
    async def _erase(
        self, repo: PrivacyRepository, creator_id: uuid.UUID, erasure_id: uuid.UUID, fields: Any
    ) -> None:
        job = await repo.erasure_job(erasure_id)
        if job is None or job["state"] != "pending":
            return
        async with tenant_session(self.pool, creator_id) as session:
            await PrivacyRepository(session).start_erasure(erasure_id)
        erasure = Erasure(
            erasure_id,
            creator_id,
            await repo.creator_name(),
            job["end_user_id"],
            self.pool,
            self.redis,
            self.vectors,
            self.privacy.batch_rows,
        )
        try:
            await run_steps(
                erasure, dict(job["steps"] or {}), pause=self.privacy.batch_pause_seconds
            )
        except (VectorStoreError, aioredis.RedisError, OSError) as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            await repo.retry_erasure(erasure_id, str(reason), self.privacy.retry_seconds)
            log.warning("erasure waits for a store", extra={**fields, "error": str(reason)})
            return
        await repo.finish_erasure(erasure_id)
        # Ids of the erasure only: the audit log outlives the person.
        await record_system(repo.session, creator_id, "end_user.erased", "erasure", erasure_id)
        log.info("erasure finished", extra=fields)
