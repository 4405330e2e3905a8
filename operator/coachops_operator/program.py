"""CoachingPrograms: copy each program's configuration into PostgreSQL under its tenant.

A program is Ready when its row is current and its Creator is Ready. ``sync`` copies it
(on create, update and resume), ``recheck`` decides whether the timer must copy it again
(row gone or behind, or the Creator's readiness changed), ``remove`` deletes the row or
keeps it marked deleted, by the Creator's reclaim policy.

Nothing here knows kopf: the Creator comes as the summary kept by the handlers' index
(``CreatorSummary``), results as data.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import ValidationError

from coachops_crds import constants as c
from coachops_crds.models import CoachingProgramSpec
from coachops_operator import conditions as cond
from coachops_operator import metrics
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.stores import Stores
from coachops_operator.validation import first_problem


class CreatorSummary(TypedDict):
    """What a program needs to know of its Creator (kept by the handlers' index)."""

    name: str
    ready: bool
    database: bool
    reason: str
    reclaim: str
    deleting: bool


def summarize_creator(
    name: str, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any]
) -> CreatorSummary:
    conditions = status.get("conditions")
    return {
        "name": name,
        "ready": cond.is_true(conditions, cond.READY),
        "database": cond.is_true(conditions, cond.DATABASE_READY),
        "reason": (cond.get(conditions, cond.READY) or {}).get("reason", ""),
        "reclaim": spec.get("reclaimPolicy", "Retain"),
        "deleting": bool(meta.get("deletionTimestamp")),
    }


class Result(enum.Enum):
    SYNCED = "ok"  # copied (Ready may still wait for the Creator; the timer re-checks)
    RETRY = "retry"  # not copied yet: come back
    PERMANENT = "permanent"  # the spec can never be copied as it is


@dataclass(frozen=True)
class Sync:
    observation: Observation  # the program's Ready condition
    result: Result


def program_id(namespace: str, name: str) -> uuid.UUID:
    return c.program_id(namespace.removeprefix(c.NAMESPACE_PREFIX), name)


def _generation(body: Mapping[str, Any]) -> int:
    return int(body["metadata"].get("generation") or 0)


async def sync(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
) -> Sync:
    """Copy the program into its tenant's ``programs`` row (measured)."""
    started = time.monotonic()
    done = await _copy(stores, name, namespace, body, creator)
    metrics.RECONCILE_SECONDS.labels("CoachingProgram").observe(time.monotonic() - started)
    metrics.RECONCILES.labels("CoachingProgram", done.result.value).inc()
    return done


async def _copy(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
) -> Sync:
    if creator is None:
        return Sync(
            Observation.false(
                cond.READY, "CreatorNotFound", f"no Creator owns namespace {namespace}"
            ),
            Result.RETRY,
        )
    not_ready = f"Creator {creator['name']} is not Ready ({creator['reason'] or 'pending'})"
    if not creator["database"]:
        return Sync(Observation.false(cond.READY, "CreatorNotReady", not_ready), Result.RETRY)
    try:
        parsed = CoachingProgramSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as error:
        problem = first_problem(error, "spec.")
        return Sync(Observation.false(cond.READY, "InvalidSpec", problem), Result.PERMANENT)
    try:
        await stores.db.upsert_program(
            c.tenant_id(creator["name"]),
            program_id(namespace, name),
            name,
            parsed.title,
            parsed.model_dump(by_alias=True, mode="json"),
            _generation(body),
        )
    except PG_ERRORS as error:
        return Sync(
            Observation.false(cond.READY, "DatabaseUnavailable", describe(error)), Result.RETRY
        )
    synced = f"configuration (generation {_generation(body)}) copied to tenant {creator['name']}"
    if not creator["ready"]:
        # The copy is done; Ready follows the creator (the timer re-checks it).
        return Sync(
            Observation.false(cond.READY, "CreatorNotReady", f"{not_ready}; {synced}"),
            Result.SYNCED,
        )
    return Sync(Observation.true(cond.READY, "Synced", synced), Result.SYNCED)


def status(body: Mapping[str, Any], namespace: str, name: str, done: Sync) -> dict[str, Any]:
    """The program's status after ``sync``: conditions, generation, id, enabled channels."""
    old = body.get("status") or {}
    generation = _generation(body)
    conditions = cond.merge(old.get("conditions"), [done.observation], generation)
    metrics.record_conditions("CoachingProgram", f"{namespace}/{name}", conditions)
    channels = (body.get("spec") or {}).get("channels", [])
    return {
        "conditions": conditions,
        "observedGeneration": generation,
        "programId": str(program_id(namespace, name)),
        "channels": sum(1 for channel in channels if channel.get("enabled", True)),
    }


def changed(body: Mapping[str, Any], observation: Observation) -> bool:
    """Whether Ready's reason changes (worth an Event)."""
    old = cond.get((body.get("status") or {}).get("conditions"), cond.READY)
    return old is None or old.get("reason") != observation.reason


async def recheck(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
) -> tuple[list[dict[str, Any]], Observation] | None:
    """The timer's check: copy again when the row went missing or fell behind, and keep
    Ready true to the Creator's readiness. Returns the new conditions and the Ready
    observation when it copied or Ready changed."""
    conditions = (body.get("status") or {}).get("conditions")
    ready_now = cond.is_true(conditions, cond.READY)
    creator_ready = creator is not None and creator["ready"]
    needs_sync = creator_ready and not ready_now
    if creator is not None and creator_ready and ready_now:
        try:
            synced = await stores.db.program_generation(
                c.tenant_id(creator["name"]), program_id(namespace, name)
            )
        except PG_ERRORS:
            synced = -1
        needs_sync = synced != _generation(body)
    if not (needs_sync or (ready_now and not creator_ready)):
        return None
    done = await _copy(stores, name, namespace, body, creator)
    merged = cond.merge(conditions, [done.observation], _generation(body))
    metrics.record_conditions("CoachingProgram", f"{namespace}/{name}", merged)
    return merged, done.observation


async def remove(stores: Stores, name: str, namespace: str, creator: CreatorSummary | None) -> bool:
    """Delete the program's row (reclaimPolicy Delete) or mark it deleted (Retain);
    True when it was kept. Store errors propagate."""
    creator_name = creator["name"] if creator else namespace.removeprefix(c.NAMESPACE_PREFIX)
    keep = (creator["reclaim"] if creator else "Retain") != "Delete"
    await stores.db.remove_program(
        c.tenant_id(creator_name), program_id(namespace, name), keep=keep
    )
    metrics.forget("CoachingProgram", f"{namespace}/{name}")
    return keep
