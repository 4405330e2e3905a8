"""One task that re-checks every object of a kind, every interval: the shared scheduling.

A kopf timer per object cost the operator a task, kopf's per-object timer state and a
pass through kopf's handler machinery every interval for each object, even for the ticks
that had nothing to do. Here one task, started with the operator and stopped at its
cleanup, walks every interval over the bodies kopf's index holds (each object's latest
body, as the watch delivered it) and re-checks them with the kind's ``check``, at most
``concurrency`` at once, objects that are not Ready first. While reconciles use every slot
they have (``busy``), a pass re-checks only the objects that are not Ready: background
checks give way to reconciles (which share the database pool).

An object is left out of a pass while a handler holds it (``exclusive``; the handler also
waits for a re-check of it already under way), while kopf's change handler has not
finished its generation (``drift_check.settled``), once it is being deleted, and when it
was evaluated less than half an interval ago. A leader that loses its Lease exits the
process (``fence.py``), and kopf runs the start-up handler that starts a sweep only on the
leader, so a sweep needs no leadership check of its own.

``program_sweep.py`` and ``creator_sweep.py`` say what a re-check of their kind is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from coachops_operator import conditions as cond
from coachops_operator import drift_check, events, kube
from coachops_operator.stores import Stores

Key = tuple[str, str]  # (namespace, name); a cluster-scoped object's namespace is ""
Bodies = Callable[[], Iterable[Mapping[str, Any]]]
T = TypeVar("T")


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return str(meta.get("namespace") or ""), str(meta["name"])


def is_ready(body: Mapping[str, Any]) -> bool:
    return cond.is_true((body.get("status") or {}).get("conditions"), cond.READY)


class Sweep(Generic[T]):
    """Re-checks every object ``bodies`` lists, every ``interval`` seconds; ``lookup`` is
    what a kind's check reads from another of kopf's indexes, by a name."""

    api_version = ""  # the object's apiVersion and kind: its status path and Events
    kind = ""
    log = logging.getLogger("coachops_operator")

    def __init__(
        self,
        stores: Stores,
        bodies: Bodies,
        lookup: Callable[[str], T],
        *,
        interval: float,
        handler_id: str,
        concurrency: int = 4,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.stores = stores
        self.bodies = bodies
        self.lookup = lookup
        self.interval = interval
        self.handler_id = handler_id  # the change handler's id in status.kopf.progress
        self.concurrency = concurrency
        # Whether reconciles are using every slot they have (the kind's own rule unless given).
        self.busy = busy or self.reconciles_busy
        self.checked: dict[Key, float] = {}  # monotonic time of the last evaluation
        self._held: dict[Key, int] = {}
        self._running: dict[Key, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=f"{self.kind} sweep")

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
                self.log.exception("the %ss' re-check pass failed", self.kind)
            # A pass longer than the interval is followed by a short pause, not another
            # pass at once: the objects it reached late are not due again yet anyway.
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
        """A deleted object's bookkeeping goes."""
        self.checked.pop(key, None)

    # ---------------------------------------------------------------- one pass

    def due(self, body: Mapping[str, Any], now: float) -> bool:
        key = key_of(body)
        return (
            not body["metadata"].get("deletionTimestamp")
            and key not in self._held
            and key not in self._running
            and now - self.checked.get(key, -1e9) >= self.interval / 2
            and drift_check.settled(body, self.handler_id)
        )

    def reconciles_busy(self) -> bool:
        """Whether the reconciles this kind's checks give way to use every slot."""
        return False

    async def begin(self, bodies: list[Mapping[str, Any]]) -> None:
        """What a pass does once, before its re-checks (nothing unless the kind says)."""

    async def sweep(self) -> int:
        """One pass over every due object; returns how many were re-checked."""
        now = time.monotonic()
        listed = list(self.bodies())
        await self.begin(listed)
        due = [body for body in listed if self.due(body, now)]
        # Objects that are not Ready first: one waiting for a change turns Ready sooner.
        due.sort(key=is_ready)
        pending = iter(due)
        count = 0

        async def work() -> None:
            nonlocal count
            for body in pending:
                if not self.due(body, time.monotonic()):  # a handler took it meanwhile
                    continue
                if is_ready(body) and self.busy():
                    # Reconciles are waiting for a turn: an object that is Ready waits for
                    # the next pass, one that is not goes on.
                    continue
                count += 1
                await self.recheck(body)

        await asyncio.gather(*(work() for _ in range(min(self.concurrency, len(due)))))
        return count

    async def recheck(self, body: Mapping[str, Any]) -> None:
        """Re-check one object (``check``), known to be running until it ends."""
        key = key_of(body)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            await self.check(body)
            self.checked[key] = time.monotonic()
        except Exception:  # one object's failure must not stop the others' re-checks
            self.log.exception("re-checking %s %s/%s failed", self.kind, *key)
        finally:
            del self._running[key]
            done.set_result(None)

    async def check(self, body: Mapping[str, Any]) -> None:
        """Re-check one object: the kind's own work."""
        raise NotImplementedError

    # ---------------------------------------------------------------- writing

    async def write_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Merge-patch ``status`` into the object's status subresource (what kopf's own
        patches are too); False when the object is gone or the patch failed."""
        namespace, name = key_of(body)
        try:
            await kube.patch_status(
                self.stores.api, self.api_version, self.kind, namespace or None, name, dict(status)
            )
        except kube.KUBE_ERRORS as error:
            # An object deleted meanwhile has no status to write.
            if not isinstance(error, kube.KubeError) or error.status != 404:
                self.log.warning(
                    "writing the status of %s %s/%s: %s", self.kind, namespace, name, error
                )
            return False
        return True

    async def post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post an Event about ``body`` where kopf posts a handler's: a cluster-scoped
        object's in the login's default namespace, else ``default``."""
        namespace, name = key_of(body)
        if not namespace:
            namespace = self.stores.api.credentials.info.default_namespace or "default"
        ref = events.ObjectRef(
            self.api_version,
            self.kind,
            namespace,
            name,
            str(body["metadata"].get("uid", "")),
        )
        await events.post(self.stores.api, ref, type_, reason, message)
