"""The whole local stack: control plane, PostgreSQL (migrated), Redis, ChromaDB and Mailpit.

Components start concurrently; the stack records how long each took so the harness can
print its start-up time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from coachops_devstack.chroma import Chroma
from coachops_devstack.controlplane import ControlPlane
from coachops_devstack.mailpit import Mailpit
from coachops_devstack.postgres import Postgres
from coachops_devstack.redis import Redis


@dataclass
class StackTimings:
    total: float = 0.0
    components: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        rows = [f"  {name:<26}{seconds:6.2f} s" for name, seconds in self.components.items()]
        return "\n".join(
            ["stack start-up:", *rows, f"  {'total (concurrent)':<26}{self.total:6.2f} s"]
        )


@dataclass
class Stack:
    workdir: Path
    cluster: ControlPlane | None
    postgres: Postgres
    redis: Redis
    chroma: Chroma
    mailpit: Mailpit
    timings: StackTimings
    keep_workdir: bool = False

    def stop(self) -> None:
        """Stop every component; safe to call more than once."""
        for stop in (self.mailpit.stop, self.chroma.stop, self.redis.stop, self.postgres.stop):
            stop()
        if self.cluster is not None:
            self.cluster.stop()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def new_workdir() -> Path:
    base = os.environ.get("COACHOPS_RUN_DIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="coachops-", dir=base))


async def start_stack(
    workdir: Path | None = None,
    *,
    with_cluster: bool = True,
    keep_workdir: bool = False,
) -> Stack:
    """Start every component; on any failure, stop what started and re-raise."""
    from coachops_runtime.db.migrate import upgrade  # the runtime owns the schema

    workdir = workdir or new_workdir()
    started = time.monotonic()
    cluster = ControlPlane(workdir / "cluster") if with_cluster else None
    postgres = Postgres(workdir / "postgres")
    redis = Redis(workdir / "redis")
    chroma = Chroma(workdir / "chroma")
    mailpit = Mailpit(workdir / "mailpit")
    timings = StackTimings()
    stack = Stack(workdir, cluster, postgres, redis, chroma, mailpit, timings, keep_workdir)

    async def timed(name: str, coro: object) -> None:
        begin = time.monotonic()
        await coro  # type: ignore[misc]
        timings.components[name] = time.monotonic() - begin

    async def postgres_migrated() -> None:
        await postgres.start()
        await asyncio.to_thread(upgrade, postgres.owner_dsn)
        await postgres.snapshot_template()

    tasks = [
        timed("postgres + migrations", postgres_migrated()),
        timed("redis", redis.start()),
        timed("chroma", chroma.start()),
        timed("mailpit", mailpit.start()),
    ]
    if cluster is not None:
        tasks.append(timed("etcd + apiserver + kcm", cluster.start()))
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        stack.stop()
        raise
    timings.total = time.monotonic() - started
    return stack
