"""The clients the lifespan owns, and the dependency aliases that hand them to endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from coachops_runtime.auth.keys import KeyRing, PublicKeyRing
from coachops_runtime.kit.db import Session, assert_role_is_safe, create_engine, create_pool
from coachops_runtime.kit.kube import Kube
from coachops_runtime.kit.ratelimit import Limiter
from coachops_runtime.kit.settings import Settings
from coachops_runtime.kit.transaction import request_session

log = logging.getLogger("coachops.runtime")


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    pool: asyncpg.Pool
    redis: aioredis.Redis
    limiter: Limiter
    keys: KeyRing
    kube: Kube
    tenant_cache: dict[uuid.UUID, tuple[float, Any]] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        engine = create_engine(settings)
        try:
            await assert_role_is_safe(engine, settings.tenant_id)
            pool = await create_pool(settings)
        except BaseException:
            await engine.dispose()
            raise
        redis = aioredis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            health_check_interval=10,
        )
        keys: KeyRing
        if settings.jwt_public_keys:
            keys = PublicKeyRing(settings.jwt_public_keys, issuer=settings.jwt_issuer)
        else:
            keys = await asyncio.to_thread(
                KeyRing.open,
                settings.jwt_keys_dir,
                issuer=settings.jwt_issuer,
                development=settings.environment == "development",
            )
        kube = await Kube.connect(settings.kubeconfig)
        return cls(settings, engine, pool, redis, Limiter(redis), keys, kube)

    async def stop(self) -> None:
        await self.kube.close()
        await self.redis.aclose()
        await self.pool.close()
        await self.engine.dispose()

    def cached_tenant(self, tenant_id: uuid.UUID) -> Any | None:
        entry = self.tenant_cache.get(tenant_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def cache_tenant(self, tenant_id: uuid.UUID, tenant: Any) -> None:
        if len(self.tenant_cache) > 10_000:
            self.tenant_cache.clear()
        self.tenant_cache[tenant_id] = (
            time.monotonic() + self.settings.tenant_cache_seconds,
            tenant,
        )


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs plain-def dependencies in a worker thread.
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(request: Request) -> Session:
    """The request's transaction; it commits before a successful response starts."""
    return await request_session(request.scope, runtime_of(request).pool)


SessionDep = Annotated[Session, Depends(get_session)]
