"""The clients every handler shares, and the state the drift checks keep between runs.

One ``Stores`` lives on kopf's memo for the life of the process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_operator import kube
from coachops_operator.builders import Manifest, RuntimeEnv
from coachops_operator.children import Children
from coachops_operator.database import Database
from coachops_operator.jwt_keys import public_keys
from coachops_operator.model_pulls import ModelPulls
from coachops_operator.redis_users import RedisUsers
from coachops_operator.settings import OperatorSettings
from coachops_operator.vectors import VectorStore


@dataclass
class ProgramView:
    """What the operator last wrote to a program's status, and which models it waits on."""

    uid: str
    generation: int
    conditions: list[dict[str, Any]]
    models: tuple[str, str]  # (chat, embedding) as Ollama knows them; empty when not allowed
    settled: bool = False  # False until a reconcile has written every condition


@dataclass
class Stores:
    """Clients shared by every handler (kept on kopf's memo)."""

    api: kube.KubeClient
    children: Children
    db: Database
    redis: RedisUsers
    vectors: VectorStore
    settings: OperatorSettings
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    policy_checked_at: float = 0.0
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))
    canary_ready: bool = False
    # Store-side state for the drift checks, read in one query per interval for everyone.
    snapshot_at: float = -1e9
    roles: dict[str, tuple[list[str], uuid.UUID | None]] = field(default_factory=dict)
    redis_users: dict[str, str] = field(default_factory=dict)
    snapshot_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ticks: dict[str, int] = field(default_factory=dict)
    # Programs: the model pulls (None without an Ollama URL), what each program's status
    # said last (for the pulls' progress patches), and the channel credentials copied.
    pulls: ModelPulls | None = None
    # Programs reconciled at once (the periodic re-checks have their own bound, in
    # program_sweep.py).
    program_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))
    programs: dict[tuple[str, str], ProgramView] = field(default_factory=dict)
    channel_hashes: dict[tuple[uuid.UUID, str], str] = field(default_factory=dict)
    provider_hashes: dict[uuid.UUID, str] = field(default_factory=dict)  # provider_key.py
    # name -> ((uid, generation), spec, manifests): the drift check's desired objects.
    desired: dict[str, tuple[tuple[str, int], CreatorSpec, list[Manifest]]] = field(
        default_factory=dict
    )

    async def refresh_snapshot(self, max_age: float) -> None:
        """Role and Redis user state for every tenant, at most ``max_age`` seconds old."""
        async with self.snapshot_lock:
            if time.monotonic() - self.snapshot_at < max_age:
                return
            self.roles = await self.db.all_role_problems(c.tenant_db_role(""))
            self.redis_users = await self.redis.all_users(c.tenant_redis_user(""))
            self.snapshot_at = time.monotonic()

    def lock(self, name: str) -> asyncio.Lock:
        return self.locks.setdefault(name, asyncio.Lock())

    def forget(self, name: str) -> None:
        """Drop what is kept about a Creator that is gone."""
        self.locks.pop(name, None)
        self.desired.pop(name, None)
        self.ticks.pop(name, None)

    @property
    def runtime_env(self) -> RuntimeEnv:
        return RuntimeEnv(
            image=self.settings.runtime_image,
            chroma_url=self.settings.runtime_chroma_url or self.settings.chroma_url,
            jwt_public_keys=public_keys(self.settings.jwt_keys_dir),
            jwt_issuer=self.settings.jwt_issuer,
        )

    def pg_endpoint(self) -> tuple[str, int, str]:
        parts = urlsplit(self.settings.database_url.get_secret_value())
        host = self.settings.database_host or parts.hostname or "localhost"
        return host, parts.port or 5432, (parts.path or "/coachops").lstrip("/")

    def pg_probe_dsn(self, role: str, password: str) -> str:
        """The tenant role's DSN, with the operator's connection options (sslmode ...)."""
        parts = urlsplit(self.settings.database_url.get_secret_value())
        host, port, database = parts.hostname or "localhost", parts.port or 5432, parts.path
        options = f"?{parts.query}" if parts.query else ""
        return f"postgresql://{role}:{password}@{host}:{port}{database}{options}"

    def redis_endpoint(self) -> tuple[str, int]:
        parts = urlsplit(self.settings.redis_url.get_secret_value())
        return self.settings.redis_host or parts.hostname or "localhost", parts.port or 6379

    def redis_probe_url(self, user: str, password: str) -> str:
        parts = urlsplit(self.settings.redis_url.get_secret_value())
        return f"redis://{user}:{password}@{parts.hostname}:{parts.port or 6379}/0"
