"""The periodic re-check of every CoachingProgram: one task for all of them.

A kopf timer per program cost the operator a task, kopf's per-object timer state and a
pass through kopf's handler machinery every interval for each program, even for the ticks
that had nothing to do. Here one task, started with the operator and stopped at its
cleanup, walks every drift interval over the programs kopf's index holds (each program's
latest body, as the watch delivered it) and re-checks them with ``program.recheck``, at
most ``concurrency`` at once, programs that are not Ready first. While reconciles use
every slot they have (``busy``), a pass re-checks only the programs that are not Ready:
background checks give way to reconciles (which share the database pool). A changed
status is written as a merge patch of the status subresource and a change of Ready's
reason posts an Event, as the change handler does.

A program is left out of a pass while its change or deletion handler holds it
(``exclusive``; the handler also waits for a re-check of it already under way), while
kopf's change handler has not finished its generation (``drift_check.settled``), once it
is being deleted, and when it was evaluated less than half an interval ago. A leader that
loses its Lease exits the process (``fence.py``), so the sweep needs no stop of its own
for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from coachops_crds import constants as c
from coachops_operator import conditions as cond
from coachops_operator import drift_check, events, kube
from coachops_operator import program as programs
from coachops_operator.stores import Stores

log = logging.getLogger("coachops_operator.programs")

Key = tuple[str, str]  # (namespace, name)
Bodies = Callable[[], Iterable[Mapping[str, Any]]]
CreatorOf = Callable[[str], programs.CreatorSummary | None]


def _key(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return str(meta.get("namespace") or ""), str(meta["name"])


def _ready(body: Mapping[str, Any]) -> bool:
    return cond.is_true((body.get("status") or {}).get("conditions"), cond.READY)


class ProgramSweep:
    """Re-checks every program the operator knows, every ``interval`` seconds."""

    def __init__(
        self,
        stores: Stores,
        bodies: Bodies,
        creator_of: CreatorOf,
        *,
        interval: float,
        handler_id: str,
        concurrency: int = 4,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.stores = stores
        self.bodies = bodies
        self.creator_of = creator_of
        self.interval = interval
        self.handler_id = handler_id  # the change handler's id in status.kopf.progress
        self.concurrency = concurrency
        self.busy = busy  # whether reconciles are using every slot they have
        self.checked: dict[Key, float] = {}  # monotonic time of the last evaluation
        self._held: dict[Key, int] = {}
        self._running: dict[Key, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="program sweep")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sweep()
            except Exception:  # one bad pass must not end the re-checks for good
                log.exception("the programs' re-check pass failed")
            # A pass longer than the interval is followed by a short pause, not another
            # pass at once: the programs it reached late are not due again yet anyway.
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(self.interval - elapsed, self.interval / 4))

    # ---------------------------------------------------------------- handlers' side

    @contextlib.asynccontextmanager
    async def exclusive(self, key: Key) -> AsyncIterator[None]:
        """Keep the sweep off ``key`` while a handler works on it (after waiting for a
        re-check of it already under way); it counts as evaluated when the handler ends."""
        self._held[key] = self._held.get(key, 0) + 1
        try:
            running = self._running.get(key)
            if running is not None:
                await asyncio.shield(running)
            yield
        finally:
            self.checked[key] = time.monotonic()
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def forget(self, key: Key) -> None:
        """A deleted program's bookkeeping goes."""
        self.checked.pop(key, None)

    # ---------------------------------------------------------------- one pass

    def due(self, body: Mapping[str, Any], now: float) -> bool:
        key = _key(body)
        return (
            not body["metadata"].get("deletionTimestamp")
            and key not in self._held
            and key not in self._running
            and now - self.checked.get(key, -1e9) >= self.interval / 2
            and drift_check.settled(body, self.handler_id)
        )

    async def sweep(self) -> int:
        """One pass over every due program; returns how many were re-checked."""
        now = time.monotonic()
        due = [body for body in list(self.bodies()) if self.due(body, now)]
        # Programs that are not Ready first: one waiting for its Creator turns Ready sooner.
        due.sort(key=_ready)
        pending = iter(due)
        count = 0

        async def work() -> None:
            nonlocal count
            for body in pending:
                if not self.due(body, time.monotonic()):  # a handler took it meanwhile
                    continue
                if _ready(body) and self.busy():
                    # Reconciles are waiting for a turn: a program that is Ready waits for
                    # the next pass, one that is not (its Creator turned Ready) goes on.
                    continue
                count += 1
                await self.recheck(body)

        await asyncio.gather(*(work() for _ in range(min(self.concurrency, len(due)))))
        return count

    async def recheck(self, body: Mapping[str, Any]) -> None:
        """Re-check one program (``check``), known to be running until it ends."""
        key = _key(body)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            await self.check(body)
            self.checked[key] = time.monotonic()
        except Exception:  # one program's failure must not stop the others' re-checks
            log.exception("re-checking program %s/%s failed", *key)
        finally:
            del self._running[key]
            done.set_result(None)

    async def check(self, body: Mapping[str, Any]) -> None:
        """Every part of the program again; its status and an Event when they change."""
        namespace, name = _key(body)
        rechecked = await programs.recheck(
            self.stores, name, namespace, body, self.creator_of(namespace)
        )
        if rechecked is not None:
            await self._write(body, rechecked)

    async def _write(self, body: Mapping[str, Any], outcome: programs.Outcome) -> None:
        namespace, name = _key(body)
        try:
            await kube.patch_status(
                self.stores.api, c.API_VERSION, c.PROGRAM_KIND, namespace, name, outcome.status
            )
        except kube.KUBE_ERRORS as error:
            # A program deleted meanwhile has no status to write.
            if not isinstance(error, kube.KubeError) or error.status != 404:
                log.warning("writing the status of program %s/%s: %s", namespace, name, error)
            return
        if programs.changed(body, outcome.ready):
            ready = outcome.ready
            ref = events.ObjectRef(
                c.API_VERSION,
                c.PROGRAM_KIND,
                namespace,
                name,
                str(body["metadata"].get("uid", "")),
            )
            type_ = "Normal" if ready.status == "True" else "Warning"
            await events.post(self.stores.api, ref, type_, ready.reason, ready.message)
