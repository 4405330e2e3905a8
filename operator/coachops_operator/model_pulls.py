"""Models on the Ollama server: one presence check and at most one pull per model, shared by
every program that needs it, and the removal of models nobody references any more.

``want(model, program)`` answers from memory when it can. A model not seen for a while is
checked with one ``/api/show`` (concurrent callers await the same check); a missing one
gets one background pull task, which every program naming the model waits on, so the
reconcile never blocks on a download. The task streams ``/api/pull``, tells the listener
(``program.py``, which patches each waiting program's status) at most every
``notify_every`` seconds and at start, success and failure, and retries failures with
backoff (1, 2, 4 ... 60 s) until the model is there or no program wants it. A pull whose
progress lines repeat unchanged for ``stall_after`` seconds (Ollama retrying a registry that
is gone, which it does for about a minute before it reports an error) counts as a failed
attempt too. Ollama keeps partial blobs, so a retry, or a pull started again by a restarted
operator, continues the download instead of starting over.

Removal (``collect``): a model that no program references, that no program waits on and
that is not being pulled is deleted from Ollama once it has stayed unreferenced for the
grace period. That clock is kept in memory: a restart starts it again, which only delays
a removal.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from coachops_operator import metrics
from coachops_operator.model_server import MODEL_ERRORS, ModelServer, ModelServerError
from coachops_operator.retry import backoff

log = logging.getLogger("coachops_operator.models")

Waiter = tuple[str, str]  # (namespace, name) of a program


class Phase(enum.Enum):
    UNKNOWN = "unknown"  # not checked yet
    PRESENT = "present"
    PULLING = "pulling"
    FAILED = "failed"  # the last pull attempt failed; the task retries
    UNAVAILABLE = "unavailable"  # Ollama did not answer the presence check


class Change(enum.Enum):
    PROGRESS = "progress"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class ModelState:
    """What is known of one model on the server (``name`` as Ollama knows it)."""

    name: str
    phase: Phase = Phase.UNKNOWN
    completed: int = 0  # bytes, over every layer seen in the pull's stream
    total: int = 0
    percent: int = 0  # never goes down while the state lives
    error: str = ""
    attempts: int = 0  # failed pull attempts in a row
    checked_at: float = -math.inf
    waiters: set[Waiter] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    check: asyncio.Task[None] | None = None
    notified_at: float = -math.inf


# Told of a change and which programs to tell (all waiters, or one that joined a pull).
Listener = Callable[[ModelState, Change, Collection[Waiter]], Awaitable[None]]


async def _ignore(_state: ModelState, _change: Change, _waiters: Collection[Waiter]) -> None:
    return None


class ModelPulls:
    """Every model the operator's programs name, on one Ollama server."""

    def __init__(
        self,
        server: ModelServer,
        *,
        insecure: bool = False,
        recheck_after: float = 60.0,
        retry_unavailable_after: float = 5.0,
        notify_every: float = 1.0,
        gc_grace: float = 86_400.0,
        stall_after: float = 120.0,
    ) -> None:
        self.server = server
        self.insecure = insecure
        self.recheck_after = recheck_after
        self.retry_unavailable_after = retry_unavailable_after
        self.notify_every = notify_every
        self.gc_grace = gc_grace
        self.stall_after = stall_after
        self.models: dict[str, ModelState] = {}
        self.listener: Listener = _ignore
        self.unused_since: dict[str, float] = {}
        self._joins: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- wanting a model

    async def want(self, name: str, waiter: Waiter) -> ModelState:
        """The model's state for ``waiter``, which from now on hears of its pull."""
        state = self.models.get(name)
        if state is None:
            state = self.models[name] = ModelState(name)
        joined = waiter not in state.waiters
        state.waiters.add(waiter)
        self.unused_since.pop(name, None)
        if state.task is not None and not state.task.done():
            if joined:  # a pull started for another program: this one waits on it too
                join = asyncio.create_task(self._tell(state, Change.STARTED, [waiter]))
                self._joins.add(join)
                join.add_done_callback(self._joins.discard)
            return state  # the running pull's task reports from now on
        age = time.monotonic() - state.checked_at
        stale = self.recheck_after
        if state.phase in (Phase.UNKNOWN, Phase.UNAVAILABLE):
            stale = self.retry_unavailable_after
        if age >= stale:
            if state.check is None or state.check.done():
                state.check = asyncio.create_task(self._check(state))
            await asyncio.shield(state.check)
        return state

    def release(self, waiter: Waiter, keep: frozenset[str] = frozenset()) -> None:
        """``waiter`` no longer needs any model but those in ``keep``."""
        for name, state in self.models.items():
            if name not in keep:
                state.waiters.discard(waiter)

    async def _check(self, state: ModelState) -> None:
        try:
            present = await self.server.present(state.name)
        except MODEL_ERRORS as error:
            state.phase = Phase.UNAVAILABLE
            state.error = str(error) or type(error).__name__
        else:
            if present:
                state.phase, state.percent, state.error = Phase.PRESENT, 100, ""
            elif state.task is None or state.task.done():
                state.phase = Phase.PULLING
                state.task = asyncio.create_task(self._pull(state), name=f"pull {state.name}")
        state.checked_at = time.monotonic()

    # ---------------------------------------------------------------- the pull

    async def _notify(self, state: ModelState, change: Change) -> None:
        now = time.monotonic()
        if change is Change.PROGRESS and now - state.notified_at < self.notify_every:
            return
        state.notified_at = now
        await self._tell(state, change, list(state.waiters))

    async def _tell(self, state: ModelState, change: Change, waiters: Collection[Waiter]) -> None:
        try:
            await self.listener(state, change, waiters)
        except Exception:  # a listener failure must not end the pull
            log.exception("reporting the pull of %s failed", state.name)

    async def _pull(self, state: ModelState) -> None:
        change = Change.STARTED
        while state.waiters:
            state.phase, state.error = Phase.PULLING, ""
            await self._notify(state, change)
            try:
                await self._stream(state)
            except MODEL_ERRORS as error:
                state.phase = Phase.FAILED
                state.error = str(error) or type(error).__name__
                state.attempts += 1
                metrics.pull_ended(state.name, "failed")
                log.warning("pull of %s failed (attempt %d): %s", state.name, state.attempts, error)
                await self._notify(state, Change.FAILED)
                await asyncio.sleep(backoff(state.attempts - 1))
                change = Change.PROGRESS  # a retry: no new "started" Event
                continue
            state.phase, state.percent, state.error, state.attempts = Phase.PRESENT, 100, "", 0
            state.checked_at = time.monotonic()
            metrics.pull_ended(state.name, "succeeded")
            log.info("pulled %s", state.name)
            await self._notify(state, Change.SUCCEEDED)
            return
        state.phase = Phase.UNKNOWN  # nobody wants it any more: stop, check again if asked

    async def _stream(self, state: ModelState) -> None:
        layers: dict[str, tuple[int, int]] = {}
        last: tuple[object, ...] = ()
        changed_at = time.monotonic()
        # aclosing: a stalled pull's request ends here, not whenever the generator is collected.
        async with contextlib.aclosing(
            self.server.pull(state.name, insecure=self.insecure)
        ) as events:
            async for event in events:
                digest, total = event.get("digest"), event.get("total")
                if isinstance(digest, str) and isinstance(total, int) and total > 0:
                    layers[digest] = (int(event.get("completed") or 0), total)
                    state.completed = sum(done for done, _ in layers.values())
                    state.total = sum(size for _, size in layers.values())
                    # 100 only once Ollama says success (after verifying the digests).
                    state.percent = max(
                        state.percent, min(99, state.completed * 100 // state.total)
                    )
                    metrics.pull_progress(state.name, state.completed, state.total)
                    await self._notify(state, Change.PROGRESS)
                if event.get("status") == "success":
                    return
                seen = (event.get("status"), state.completed, state.total)
                now = time.monotonic()
                if seen != last:
                    last, changed_at = seen, now
                elif now - changed_at >= self.stall_after:
                    raise ModelServerError(f"no progress for {self.stall_after:g} s")
        raise ModelServerError("the pull ended before Ollama reported success")

    # ---------------------------------------------------------------- removal

    async def collect(self, referenced: set[str]) -> list[str]:
        """Delete models unreferenced for the grace period; returns the names deleted."""
        if self.gc_grace <= 0:
            return []
        now = time.monotonic()
        deleted = []
        for name in await self.server.names():
            state = self.models.get(name)
            busy = state is not None and (
                bool(state.waiters) or (state.task is not None and not state.task.done())
            )
            if name in referenced or busy:
                self.unused_since.pop(name, None)
                continue
            since = self.unused_since.setdefault(name, now)
            if now - since < self.gc_grace:
                continue
            if await self.server.delete(name):
                deleted.append(name)
                log.info("removed model %s: no program has used it for %.0f s", name, now - since)
            self.unused_since.pop(name, None)
            self.models.pop(name, None)
        return deleted

    async def close(self) -> None:
        tasks = [s.task for s in self.models.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.server.close()
