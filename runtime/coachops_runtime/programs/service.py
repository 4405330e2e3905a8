"""Programs: writes go to the CoachingProgram objects (the operator reconciles them),
reads come from the operator's database copy plus the object's status."""

from __future__ import annotations

from typing import Any

from coachops_crds.constants import (
    API_VERSION,
    LABEL_CREATOR,
    PROGRAM_KIND,
    creator_namespace,
    program_id,
)
from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.kit.errors import Forbidden, NotFound
from coachops_runtime.kit.kube import Kube
from coachops_runtime.programs.repository import ProgramObjects, ProgramRepository
from coachops_runtime.programs.schemas import (
    ConditionPublic,
    ProgramCreate,
    ProgramPublic,
    ProgramStatus,
    ProgramUpdate,
)


def status_url(name: str) -> str:
    return f"/v1/programs/{name}/status"


def _objects(kube: Kube, context: CreatorContext) -> ProgramObjects:
    return ProgramObjects(kube, creator_namespace(context.tenant.name))


def status_of(obj: dict[str, Any]) -> ProgramStatus:
    """The object's phase: Deleting once deletion began; Pending until the operator has
    observed the current generation and set Ready; then Ready or NotReady by Ready."""
    metadata = obj.get("metadata", {})
    status = obj.get("status") or {}
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    conditions = [
        ConditionPublic(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=str(c.get("reason", "")),
            message=str(c.get("message", "")),
        )
        for c in status.get("conditions") or []
    ]
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if metadata.get("deletionTimestamp"):
        phase = "Deleting"
    elif observed < generation or ready is None:
        phase = "Pending"
    else:
        phase = "Ready" if ready.status == "True" else "NotReady"
    return ProgramStatus(
        phase=phase,
        observed_generation=observed,
        generation=generation,
        model_pull_percent=int(status.get("modelPullPercent") or 0),
        conditions=conditions,
        endpoints=dict(status.get("endpoints") or {}),
    )


def _from_object(obj: dict[str, Any]) -> ProgramPublic:
    name = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    program_id = (obj.get("status") or {}).get("programId") or None
    return ProgramPublic(
        name=name,
        program_id=program_id,
        title=str(spec.get("title", "")),
        spec=spec,
        created_at=obj["metadata"].get("creationTimestamp"),
        status_url=status_url(name),
        status=status_of(obj),
    )


def _from_row(row: Any) -> ProgramPublic:
    return ProgramPublic(
        name=row["name"],
        program_id=row["program_id"],
        title=row["title"],
        spec=row["spec"] or {},
        created_at=row["created_at"],
        status_url=status_url(row["name"]),
    )


async def create(kube: Kube, context: CreatorContext, data: ProgramCreate) -> ProgramPublic:
    count = await ProgramRepository(context.session).count()
    if count >= context.tenant.plan.max_programs:
        raise Forbidden(
            f"the {context.tenant.plan.name} plan allows {context.tenant.plan.max_programs} "
            "programs; delete one or upgrade the plan"
        )
    body = {
        "apiVersion": API_VERSION,
        "kind": PROGRAM_KIND,
        "metadata": {"name": data.name, "labels": {LABEL_CREATOR: context.tenant.name}},
        "spec": data.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    program = _from_object(await _objects(kube, context).create(body))
    # The operator derives the database id from the names, so it is known before the sync.
    program.program_id = program_id(context.tenant.name, data.name)
    return program


async def list_programs(context: CreatorContext) -> list[ProgramPublic]:
    return [_from_row(row) for row in await ProgramRepository(context.session).list()]


async def get(kube: Kube, context: CreatorContext, name: str) -> ProgramPublic:
    row = await ProgramRepository(context.session).by_name(name)
    obj = await _objects(kube, context).get(name) if kube.api is not None else None
    if row is None and obj is None:
        raise NotFound("no such program")
    program = _from_row(row) if row is not None else _from_object(obj or {})
    if obj is not None:
        program.status = status_of(obj)
    return program


async def status(kube: Kube, context: CreatorContext, name: str) -> ProgramStatus:
    obj = await _objects(kube, context).get(name)
    if obj is None:
        raise NotFound("no such program")
    return status_of(obj)


async def update(
    kube: Kube, context: CreatorContext, name: str, data: ProgramUpdate
) -> ProgramPublic:
    changes = data.model_dump(by_alias=True, exclude_unset=True, mode="json")
    objects = _objects(kube, context)
    if await objects.get(name) is None:
        raise NotFound("no such program")
    return _from_object(await objects.patch(name, {"spec": changes}))


async def delete(kube: Kube, context: CreatorContext, name: str) -> None:
    objects = _objects(kube, context)
    if await objects.get(name) is None:
        raise NotFound("no such program")
    await objects.delete(name)
