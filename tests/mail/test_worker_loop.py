"""The worker's generic poller loop: work until nothing is due, wait, survive failures, stop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from coachops_runtime.worker.loop import run_pollers


class Scripted:
    """A poller that answers from a script: a number of items handled, or an exception."""

    def __init__(self, name: str, script: list[int | Exception], stop: asyncio.Event) -> None:
        self.name = name
        self.script = script
        self.stop = stop
        self.calls: list[float] = []

    async def poll(self) -> int:
        self.calls.append(time.monotonic())
        if not self.script:
            self.stop.set()
            return 0
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


async def test_a_poller_is_asked_again_at_once_while_it_has_work_and_waits_when_idle() -> None:
    stop = asyncio.Event()
    poller = Scripted("busy", [3, 2, 0, 1], stop)
    await asyncio.wait_for(run_pollers([poller], stop, idle_seconds=1.0), timeout=5)
    gaps = [later - earlier for earlier, later in zip(poller.calls, poller.calls[1:], strict=False)]
    assert len(poller.calls) == 5
    # Work handled: asked again at once (well under the idle wait); none: the idle wait.
    assert [gap < 0.5 for gap in gaps] == [True, True, False, True]
    assert gaps[2] >= 1.0


async def test_a_failing_poller_is_logged_waits_longer_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    poller = Scripted("flaky", [RuntimeError("database away"), RuntimeError("still away"), 1], stop)
    with caplog.at_level(logging.ERROR, logger="coachops.worker"):
        await asyncio.wait_for(run_pollers([poller], stop, idle_seconds=0.05), timeout=5)
    gaps = [later - earlier for earlier, later in zip(poller.calls, poller.calls[1:], strict=False)]
    assert gaps[0] >= 0.1  # idle * 2 after one failure
    assert gaps[1] >= 0.2  # idle * 4 after two in a row
    assert caplog.text.count("poller failed") == 2
    assert len(poller.calls) == 4


async def test_stopping_ends_an_idle_wait_at_once() -> None:
    stop = asyncio.Event()
    idle = Scripted("idle", [0] * 100, stop)
    task = asyncio.create_task(run_pollers([idle], stop, idle_seconds=60))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert time.monotonic() - started < 0.5
    assert len(idle.calls) == 1
