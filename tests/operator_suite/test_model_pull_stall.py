"""A pull whose progress stops changing is a failed attempt, retried; one that moves is not.

Ollama retries a registry that went away for about a minute, repeating the same progress
line meanwhile; ``ModelPulls(stall_after=...)`` ends such an attempt sooner. The server
here is a stand-in for Ollama's ``/api/pull`` stream (the real one is in test_programs.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Collection
from typing import Any, cast

from coachops_operator.model_pulls import Change, ModelPulls, ModelState, Waiter
from coachops_operator.model_server import ModelServer

LAYER = "sha256:" + "ab" * 32
TOTAL = 1000


class Server:
    """``/api/pull`` scripted per attempt: each attempt a list of ``completed`` values,
    one line every ``every`` seconds, then ``success`` unless the attempt ends with None
    (the line before it repeated until the client goes away)."""

    def __init__(self, attempts: list[list[int | None]], every: float = 0.02) -> None:
        self.attempts = attempts
        self.every = every
        self.pulls = 0
        self.closed = 0

    async def present(self, _name: str) -> bool:
        return False

    async def pull(self, _name: str, *, insecure: bool) -> AsyncGenerator[dict[str, Any]]:
        script = self.attempts[self.pulls]
        self.pulls += 1
        try:
            yield {"status": "pulling manifest"}
            done = 0
            for completed in script:
                if completed is None:
                    while True:  # a registry that is gone: the same line, again and again
                        await asyncio.sleep(self.every)
                        yield {"status": "pulling ab", "digest": LAYER, "total": TOTAL,
                               "completed": done}  # fmt: skip
                done = completed
                await asyncio.sleep(self.every)
                yield {"status": "pulling ab", "digest": LAYER, "total": TOTAL, "completed": done}
            yield {"status": "success"}
        finally:
            self.closed += 1


async def pull(server: Server, stall_after: float) -> list[tuple[Change, str]]:
    """Every change the listener hears until the model is there (or 10 s pass)."""
    heard: list[tuple[Change, str]] = []
    finished = asyncio.Event()

    async def listener(state: ModelState, change: Change, _waiters: Collection[Waiter]) -> None:
        heard.append((change, state.error))
        if change is Change.SUCCEEDED:
            finished.set()

    pulls = ModelPulls(cast(ModelServer, server), stall_after=stall_after)
    pulls.listener = listener
    await pulls.want("m:latest", ("ns", "program"))
    await asyncio.wait_for(finished.wait(), 10)
    return heard


async def test_a_stalled_attempt_fails_ends_its_request_and_the_retry_finishes() -> None:
    server = Server([[100, 200, None], [600, TOTAL]])
    heard = await pull(server, stall_after=0.3)
    failures = [error for change, error in heard if change is Change.FAILED]
    assert failures == ["no progress for 0.3 s"]
    assert heard[-1][0] is Change.SUCCEEDED
    assert server.pulls == 2
    assert server.closed == 2  # the stalled request was closed, not left to the collector


async def test_progress_slower_than_the_bound_in_total_is_no_stall() -> None:
    # 20 lines 0.05 s apart (1 s in all, each one a change) with a bound of 0.3 s.
    server = Server([[50 * i for i in range(1, 21)]], every=0.05)
    heard = await pull(server, stall_after=0.3)
    assert [change for change, _ in heard if change is Change.FAILED] == []
    assert heard[-1][0] is Change.SUCCEEDED
    assert server.pulls == 1
