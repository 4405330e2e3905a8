"""CoachingPrograms: the configuration copied to PostgreSQL, models, knowledge, channels and
schedules checked, and a Ready that is the conjunction of them.

Conditions (``conditions.PROGRAM_PARTS``): ``ScheduleReady`` (``schedules.py``),
``Synced`` (the row in ``programs`` is current and the Creator is Ready), ``ModelReady``
(``program_models.py``), ``KnowledgeReady`` (``knowledge_status``) and ``ChannelsReady``
(``channels.py``). ``evaluate`` runs all of them, on create, update and resume (copying
the row) and in the periodic re-check (``program_sweep.py``; copying only when the row
went missing or fell behind).
``remove`` deletes the row or keeps it marked deleted, by the Creator's reclaim policy.

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
from coachops_crds.models import AllowedModels, CoachingProgramSpec
from coachops_operator import (
    channels,
    knowledge,
    metrics,
    program_models,
    provider_key,
    schedules,
)
from coachops_operator import conditions as cond
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.stores import ProgramView, Stores
from coachops_operator.validation import first_problem


class CreatorSummary(TypedDict):
    """What a program needs to know of its Creator (kept by the handlers' index)."""

    name: str
    ready: bool
    database: bool
    reason: str
    reclaim: str
    deleting: bool
    chat_models: list[str]
    embedding_models: list[str]


def summarize_creator(
    name: str, spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any]
) -> CreatorSummary:
    conditions = status.get("conditions")
    try:
        models = AllowedModels.model_validate(spec.get("models") or {})
    except ValidationError:  # the CRD schema admits none; fall back to the defaults
        models = AllowedModels(chat=[], embedding=[])
    return {
        "name": name,
        "ready": cond.is_true(conditions, cond.READY),
        "database": cond.is_true(conditions, cond.DATABASE_READY),
        "reason": (cond.get(conditions, cond.READY) or {}).get("reason", ""),
        "reclaim": spec.get("reclaimPolicy", "Retain"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "chat_models": list(models.chat),
        "embedding_models": list(models.embedding),
    }


class Result(enum.Enum):
    SYNCED = "ok"  # copied (Ready may still wait for other parts; the sweep re-checks)
    RETRY = "retry"  # not copied yet: come back
    PERMANENT = "permanent"  # the spec can never be copied as it is


@dataclass(frozen=True)
class Sync:
    observation: Observation  # the program's Synced condition
    result: Result


@dataclass(frozen=True)
class Outcome:
    """A program's new status, its Ready observation, and whether to come back."""

    status: dict[str, Any]
    ready: Observation
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
) -> Outcome:
    """Create, update or resume: copy the program and check every part (measured)."""
    started = time.monotonic()
    async with metrics.turn(stores.program_gate, "CoachingProgram"):
        outcome = await evaluate(stores, name, namespace, body, creator, copy=True)
    metrics.RECONCILE_SECONDS.labels("CoachingProgram").observe(time.monotonic() - started)
    metrics.RECONCILES.labels("CoachingProgram", outcome.result.value).inc()
    return outcome


async def recheck(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
) -> Outcome | None:
    """The periodic check (``program_sweep.py``): every part again, the row copied only
    when missing or behind. Returns the outcome when the status changed, else None."""
    outcome = await evaluate(stores, name, namespace, body, creator, copy=False)
    old = body.get("status") or {}
    if _same(old, outcome.status):
        return None
    return outcome


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def strip(conditions: Any) -> list[tuple[Any, ...]]:
        return sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in conditions or []
        )

    for key, value in new.items():
        if key == "conditions":
            if strip(old.get(key)) != strip(value):
                return False
        elif key == "endpoints":
            if (old.get(key) or {}) != {k: v for k, v in value.items() if v is not None}:
                return False
        elif old.get(key) != value:
            return False
    return True


async def evaluate(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
    *,
    copy: bool,
) -> Outcome:
    """Every part of the program, observed now; the status to write."""
    raw = dict(body.get("spec") or {})
    generation = _generation(body)
    old = body.get("status") or {}
    pid = program_id(namespace, name)
    schedule = schedules.observe(raw)
    try:
        spec: CoachingProgramSpec | None = CoachingProgramSpec.model_validate(raw)
    except ValidationError as error:
        spec = None
        synced = Sync(
            Observation.false(cond.SYNCED, "InvalidSpec", first_problem(error, "spec.")),
            Result.PERMANENT,
        )
    if spec is not None:
        synced = await _synced(stores, name, namespace, body, creator, spec, copy=copy)
    models = await program_models.observe(stores, (namespace, name), body, spec, creator)
    if spec is not None and synced.result is Result.SYNCED and creator is not None:
        key_problem = await provider_key.copy(
            stores, namespace, spec, c.tenant_id(creator["name"]), pid
        )
        if key_problem is not None:
            models = program_models.Models(
                Observation.false(cond.MODEL_READY, "ProviderKeyMissing", key_problem),
                models.percent,
                models.names,
            )
    knowledge, chunks = await knowledge_status(stores, namespace, name, spec, creator)
    if synced.result is Result.SYNCED and creator is not None:
        wiring = await channels.wire(stores, namespace, raw, c.tenant_id(creator["name"]), pid)
    else:
        wiring = channels.Wiring(
            Observation(cond.CHANNELS_READY, "Unknown", "Pending", "waiting for the database copy")
        )
    parts = [schedule, synced.observation, models.observation, knowledge, wiring.observation]
    ready = cond.summarize(parts, ready=program_models.READY_MESSAGE)
    conditions = cond.merge(old.get("conditions"), [*parts, ready], generation)
    metrics.record_conditions("CoachingProgram", f"{namespace}/{name}", conditions)
    stores.programs[(namespace, name)] = ProgramView(
        uid=str(body["metadata"].get("uid", "")),
        generation=generation,
        conditions=conditions,
        models=models.names,
        settled=True,
    )
    endpoints: dict[str, str | None] = {key: None for key in old.get("endpoints") or {}}
    endpoints.update(wiring.endpoints)
    status = {
        "conditions": conditions,
        "observedGeneration": generation,
        "programId": str(pid),
        "channels": sum(1 for ch in raw.get("channels", []) if ch.get("enabled", True)),
        "modelPullPercent": models.percent,
        "endpoints": endpoints,
        "knowledgeChunks": chunks,
    }
    return Outcome(status, ready, synced.result)


async def knowledge_status(
    stores: Stores,
    namespace: str,
    name: str,
    spec: CoachingProgramSpec | None,
    creator: CreatorSummary | None,
) -> tuple[Observation, int]:
    """KnowledgeReady and the program's chunk count (``knowledge.py``: the spec's documents
    written, the ingestion states of every document read back)."""
    owner = creator["name"] if creator is not None and creator["database"] else None
    return await knowledge.observe(stores, namespace, program_id(namespace, name), spec, owner)


async def _synced(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
    spec: CoachingProgramSpec,
    *,
    copy: bool,
) -> Sync:
    """Synced: reuse a current copy on a re-check (one query), copy otherwise."""
    previous = cond.get((body.get("status") or {}).get("conditions"), cond.SYNCED)
    generation = _generation(body)
    if (
        not copy
        and creator is not None
        and creator["ready"]
        and previous is not None
        and previous.get("status") == "True"
    ):
        try:
            current = await stores.db.program_generation(
                c.tenant_id(creator["name"]), program_id(namespace, name)
            )
        except PG_ERRORS:
            current = -1
        if current == generation:
            return Sync(
                Observation.true(cond.SYNCED, "Synced", str(previous.get("message", ""))),
                Result.SYNCED,
            )
    return await _copy(stores, name, namespace, body, creator, spec)


async def _copy(
    stores: Stores,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    creator: CreatorSummary | None,
    spec: CoachingProgramSpec,
) -> Sync:
    if creator is None:
        return Sync(
            Observation.false(
                cond.SYNCED, "CreatorNotFound", f"no Creator owns namespace {namespace}"
            ),
            Result.RETRY,
        )
    not_ready = f"Creator {creator['name']} is not Ready ({creator['reason'] or 'pending'})"
    if not creator["database"]:
        return Sync(Observation.false(cond.SYNCED, "CreatorNotReady", not_ready), Result.RETRY)
    try:
        await stores.db.upsert_program(
            c.tenant_id(creator["name"]),
            program_id(namespace, name),
            name,
            spec.title,
            spec.model_dump(by_alias=True, mode="json"),
            _generation(body),
            channels.secret_channels(dict(body.get("spec") or {})),
        )
    except PG_ERRORS as error:
        return Sync(
            Observation.false(cond.SYNCED, "DatabaseUnavailable", describe(error)), Result.RETRY
        )
    synced = f"configuration (generation {_generation(body)}) copied to tenant {creator['name']}"
    if not creator["ready"]:
        # The copy is done; Synced follows the creator (the sweep re-checks it).
        return Sync(
            Observation.false(cond.SYNCED, "CreatorNotReady", f"{not_ready}; {synced}"),
            Result.SYNCED,
        )
    return Sync(Observation.true(cond.SYNCED, "Synced", synced), Result.SYNCED)


def changed(body: Mapping[str, Any], observation: Observation) -> bool:
    """Whether Ready's reason changes (worth an Event)."""
    old = cond.get((body.get("status") or {}).get("conditions"), cond.READY)
    return old is None or old.get("reason") != observation.reason


async def remove(stores: Stores, name: str, namespace: str, creator: CreatorSummary | None) -> bool:
    """Delete the program's row (reclaimPolicy Delete) or mark it deleted (Retain), and its
    channel credentials either way; True when the row was kept. Store errors propagate."""
    creator_name = creator["name"] if creator else namespace.removeprefix(c.NAMESPACE_PREFIX)
    keep = (creator["reclaim"] if creator else "Retain") != "Delete"
    pid = program_id(namespace, name)
    await stores.db.remove_program(c.tenant_id(creator_name), pid, keep=keep)
    if not keep:  # the knowledge rows went with the row; their vectors go too
        await knowledge.forget(stores, creator_name, pid)
    metrics.forget("CoachingProgram", f"{namespace}/{name}")
    if stores.pulls is not None:
        stores.pulls.release((namespace, name))
    stores.programs.pop((namespace, name), None)
    channels.forget(stores, pid)
    provider_key.forget(stores, pid)
    return keep
