"""Prometheus metrics of the operator (served on ``--metrics-port``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "coachops_operator_reconciles",
    "Reconciles by kind and result (ok, retry, permanent).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "coachops_operator_reconcile_duration_seconds",
    "Duration of one reconcile.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "coachops_operator_step_duration_seconds",
    "Duration of one reconcile step, by the condition it sets.",
    ["step"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
ERRORS = Counter(
    "coachops_operator_errors",
    "Failed steps by kind and condition reason.",
    ["kind", "reason"],
    registry=REGISTRY,
)
DRIFT_REPAIRS = Counter(
    "coachops_operator_drift_repairs",
    "Drift found and repaired, by what drifted.",
    ["what"],
    registry=REGISTRY,
)
CONDITIONS = Gauge(
    "coachops_operator_conditions",
    "Number of objects per condition type and status.",
    ["kind", "type", "status"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "coachops_operator_leader", "1 while this replica holds the leader Lease.", registry=REGISTRY
)
WAITING = Gauge(
    "coachops_operator_reconciles_waiting",
    "Reconciles waiting for a turn under the concurrency limit, by kind (the queue depth).",
    ["kind"],
    registry=REGISTRY,
)
PULL_BYTES = Gauge(
    "coachops_operator_model_pull_bytes",
    "A running model pull: bytes completed and size (part), per model; gone once it ends.",
    ["model", "part"],
    registry=REGISTRY,
)
PULLS = Counter(
    "coachops_operator_model_pulls",
    "Model pull attempts that ended, by result (succeeded, failed).",
    ["result"],
    registry=REGISTRY,
)

_seen: dict[tuple[str, str], dict[str, str]] = {}


def record_conditions(kind: str, name: str, conditions: Sequence[Mapping[str, Any]]) -> None:
    """Remember one object's conditions and adjust the per-status counts."""
    new = {str(c.get("type")): str(c.get("status")) for c in conditions}
    old = _seen.get((kind, name), {})
    if new == old:
        return
    _adjust(kind, old, -1)
    _adjust(kind, new, +1)
    _seen[(kind, name)] = new


def forget(kind: str, name: str) -> None:
    _adjust(kind, _seen.pop((kind, name), {}), -1)


def _adjust(kind: str, conds: Mapping[str, str], delta: int) -> None:
    for type_, status in conds.items():
        for other in ("True", "False", "Unknown"):
            CONDITIONS.labels(kind, type_, other)  # every series exists, even at 0
        CONDITIONS.labels(kind, type_, status).inc(delta)


@asynccontextmanager
async def turn(gate: asyncio.Semaphore, kind: str) -> AsyncIterator[None]:
    """Hold ``gate`` for one reconcile of ``kind``, counted as waiting until it is ours."""
    waiting = WAITING.labels(kind)
    waiting.inc()
    try:
        await gate.acquire()
    finally:
        waiting.dec()
    try:
        yield
    finally:
        gate.release()


def pull_progress(model: str, completed: int, size: int) -> None:
    PULL_BYTES.labels(model, "completed").set(completed)
    PULL_BYTES.labels(model, "size").set(size)


def pull_ended(model: str, result: str) -> None:
    """Count the attempt; the progress series go until the next attempt reports."""
    PULLS.labels(result).inc()
    for part in ("completed", "size"):
        # KeyError: the pull ended before any layer reported a size.
        with contextlib.suppress(KeyError):
            PULL_BYTES.remove(model, part)
