"""The sweeps' choices: which objects a pass re-checks, in what order, and when (``sweep.py``
with the programs' and the Creators' checks replaced by a record of them; no stack)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

import pytest

from coachops_operator import creator_sweep, program_sweep
from coachops_operator.stores import Stores
from coachops_operator.sweep import Sweep


def _body(
    name: str,
    *,
    namespace: str | None,
    handler_id: str,
    ready: bool = True,
    generation: int = 1,
    observed: int = 1,
    deleting: bool = False,
    progress: dict[str, object] | None = None,
) -> dict[str, object]:
    metadata: dict[str, object] = {"name": name, "uid": f"uid-{name}", "generation": generation}
    if namespace is not None:
        metadata["namespace"] = namespace
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, object] = {
        "observedGeneration": observed,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if progress is not None:
        status["kopf"] = {"progress": {handler_id: progress}}
    return {"metadata": metadata, "spec": {}, "status": status}


def _program(name: str, **options: Any) -> dict[str, object]:
    return _body(name, namespace="coachops-a", handler_id="sync_program", **options)


def _creator(name: str, **options: Any) -> dict[str, object]:
    return _body(name, namespace=None, handler_id="reconcile", **options)


def _stores() -> Stores:
    # Only the locks and the reconcile gates are used: the checks are replaced.
    none = cast(Any, None)
    return Stores(api=none, children=none, db=none, redis=none, vectors=none, settings=none)


class _Recording:
    """A check that records the object's name and takes a moment (until ``release``)."""

    def _record(self) -> None:
        self.order: list[str] = []
        self.passes: list[list[str]] = []
        self.at_once = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.release.set()

    async def check(self, body: Mapping[str, Any]) -> None:
        self.order.append(str(body["metadata"]["name"]))
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        await asyncio.sleep(0.001)  # a check takes time: the others start meanwhile
        await self.release.wait()
        self.at_once -= 1


class _RecordingSweep(_Recording, program_sweep.ProgramSweep):
    def __init__(self, bodies: list[dict[str, object]], concurrency: int = 2) -> None:
        super().__init__(
            _stores(),
            lambda: bodies,
            lambda _namespace: None,
            interval=10.0,
            handler_id="sync_program",
            concurrency=concurrency,
        )
        self._record()


class _RecordingCreators(_Recording, creator_sweep.CreatorSweep):
    def __init__(self, bodies: list[dict[str, object]]) -> None:
        super().__init__(
            _stores(), lambda: bodies, lambda _name: 0, interval=10.0, handler_id="reconcile"
        )
        self._record()

    async def begin(self, bodies: list[Mapping[str, Any]]) -> None:
        self.passes.append([str(body["metadata"]["name"]) for body in bodies])


# ---------------------------------------------------------------- the programs' sweep


@pytest.mark.parametrize("kind", ["program", "creator"])
def test_the_sweep_leaves_out_objects_being_deleted_handled_or_just_checked(kind: str) -> None:
    sweep: Sweep[Any] = _RecordingSweep([]) if kind == "program" else _RecordingCreators([])
    body = _program if kind == "program" else _creator
    now = time.monotonic()
    assert sweep.due(body("p"), now)
    assert not sweep.due(body("p", deleting=True), now)
    assert not sweep.due(body("p", generation=2, observed=1), now)  # handler not done
    assert not sweep.due(body("p", progress={"retries": 1}), now)  # waiting to retry
    assert sweep.due(body("p", progress={"success": True}), now)
    assert sweep.due(body("p", progress={"failure": True}), now)
    key = ("coachops-a" if kind == "program" else "", "p")
    sweep.checked[key] = now - 4.0  # less than half an interval ago
    assert not sweep.due(body("p"), now)
    assert sweep.due(body("p"), now + 1.0)
    assert sweep.due(body("q"), now)


async def test_a_pass_checks_programs_not_ready_first_within_its_bound() -> None:
    bodies = [_program(f"p{i}", ready=i % 2 == 0) for i in range(6)]
    sweep = _RecordingSweep(bodies, concurrency=2)
    assert await sweep.sweep() == 6
    assert set(sweep.order[:3]) == {"p1", "p3", "p5"}
    assert sweep.most_at_once == 2
    # Each was just checked: the next pass, at once, has nothing to do.
    assert await sweep.sweep() == 0


async def test_while_reconciles_are_busy_only_programs_not_ready_are_checked() -> None:
    bodies = [_program(f"p{i}", ready=i % 2 == 0) for i in range(4)]
    sweep = _RecordingSweep(bodies)
    busy = True
    sweep.busy = lambda: busy
    assert await sweep.sweep() == 2
    assert sorted(sweep.order) == ["p1", "p3"]
    busy = False  # the Ready ones are due on the next pass
    assert await sweep.sweep() == 2
    assert sorted(sweep.order[2:]) == ["p0", "p2"]


async def test_a_handler_waits_for_a_running_check_and_keeps_the_sweep_off() -> None:
    body = _program("p")
    sweep = _RecordingSweep([body])
    sweep.release.clear()
    passing = asyncio.create_task(sweep.sweep())
    await asyncio.sleep(0.01)
    assert sweep.order == ["p"]  # the check runs and waits
    entered = asyncio.Event()

    async def handler() -> None:
        async with sweep.exclusive(("coachops-a", "p")):
            entered.set()
            await asyncio.sleep(0.05)

    handling = asyncio.create_task(handler())
    await asyncio.sleep(0.01)
    assert not entered.is_set()  # waits for the check under way
    sweep.release.set()
    assert await passing == 1
    await asyncio.sleep(0.01)
    assert entered.is_set()
    sweep.checked.clear()
    assert await sweep.sweep() == 0  # held by the handler
    await handling
    sweep.checked.clear()
    assert await sweep.sweep() == 1
    sweep.forget(("coachops-a", "p"))
    assert ("coachops-a", "p") not in sweep.checked


async def test_one_failing_check_does_not_end_the_pass() -> None:
    class Failing(_RecordingSweep):
        async def check(self, body: Mapping[str, Any]) -> None:
            await super().check(body)
            if body["metadata"]["name"] == "p0":
                raise RuntimeError("boom")

    sweep = Failing([_program("p0"), _program("p1")], concurrency=1)
    assert await sweep.sweep() == 2
    assert sweep.order == ["p0", "p1"]
    assert ("coachops-a", "p0") not in sweep.checked  # due again on the next pass
    assert ("coachops-a", "p1") in sweep.checked


async def test_the_sweep_runs_every_interval_until_stopped() -> None:
    sweep = _RecordingSweep([_program("p")])
    sweep.interval = 0.04
    listed = sweep.bodies
    calls = 0

    def first_fails() -> Iterable[Mapping[str, Any]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("index not readable")
        return listed()

    sweep.bodies = first_fails  # a failed pass is logged; the next one runs all the same
    sweep.start()
    await asyncio.sleep(0.2)
    await sweep.stop()
    runs = len(sweep.order)
    assert runs >= 2
    await asyncio.sleep(0.1)
    assert len(sweep.order) == runs
    await sweep.stop()  # stopping twice is harmless


# ---------------------------------------------------------------- the Creators' sweep


async def test_a_creator_whose_lock_is_taken_waits_for_a_later_pass() -> None:
    sweep = _RecordingCreators([_creator("a"), _creator("b")])
    lock = sweep.stores.lock("a")  # its change handler or its deletion's reclaim
    async with lock:
        assert not sweep.due(_creator("a"), time.monotonic())
        assert await sweep.sweep() == 1
        assert sweep.order == ["b"]
    assert await sweep.sweep() == 1
    assert sweep.order == ["b", "a"]
    # The check itself gives way too when the lock was taken after the pass looked: it
    # returns without reading a store (these stores have no clients).
    real = creator_sweep.CreatorSweep(
        sweep.stores, lambda: [], lambda _name: 0, interval=10.0, handler_id="reconcile"
    )
    async with lock:
        await real.check(_creator("a"))


async def test_a_pass_over_creators_starts_once_and_gives_way_to_reconciles() -> None:
    bodies = [_creator(f"c{i}", ready=i % 2 == 0) for i in range(6)]
    sweep = _RecordingCreators(bodies)
    gate = sweep.stores.gate
    while not gate.locked():  # every reconcile slot taken: only Creators not Ready
        await gate.acquire()
    assert await sweep.sweep() == 3
    assert sorted(sweep.order) == ["c1", "c3", "c5"]
    gate.release()
    assert await sweep.sweep() == 3
    assert sorted(sweep.order[3:]) == ["c0", "c2", "c4"]
    # The pass's one-off work (row-level security) saw every Creator, once per pass.
    assert sweep.passes == [[f"c{i}" for i in range(6)]] * 2


async def test_a_reconcile_counts_as_a_check_and_a_deleted_creator_is_forgotten() -> None:
    sweep = _RecordingCreators([_creator("a")])
    async with sweep.exclusive(("", "a")):  # the change handler runs
        assert await sweep.sweep() == 0
    assert await sweep.sweep() == 0  # just reconciled: due again half an interval later
    sweep.forget(("", "a"))
    assert await sweep.sweep() == 1
