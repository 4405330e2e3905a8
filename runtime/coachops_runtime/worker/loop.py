"""A generic loop over pollers: each polls until nothing is due, then waits, until stopped.

A poller's ``poll()`` handles a bounded batch and returns how many items it handled; the
loop asks again at once while there was work and waits ``idle_seconds`` when there was
none. Stopping lets the batch in flight finish. A poller that raises is logged and waits
longer each time it fails in a row (up to a minute), so a lost database is not hammered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger("coachops.worker")

MAX_FAILURE_WAIT = 60.0


class Poller(Protocol):
    name: str

    async def poll(self) -> int: ...


async def run_pollers(pollers: Sequence[Poller], stop: asyncio.Event, idle_seconds: float) -> None:
    await asyncio.gather(*(_run(poller, stop, idle_seconds) for poller in pollers))


async def _run(poller: Poller, stop: asyncio.Event, idle_seconds: float) -> None:
    failures = 0
    while not stop.is_set():
        try:
            handled = await poller.poll()
        except Exception:
            failures += 1
            log.exception("poller failed", extra={"poller": poller.name, "failures": failures})
            await _wait(stop, min(MAX_FAILURE_WAIT, idle_seconds * 2**failures))
            continue
        failures = 0
        if handled == 0:
            # A poller may offer a ``wake`` event (set when new work is announced) that
            # ends the wait early.
            await _wait(stop, idle_seconds, getattr(poller, "wake", None))


async def _wait(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        return
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
