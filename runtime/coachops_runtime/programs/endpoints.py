"""Programs of the caller's tenant. Writes answer 202: the operator finishes the work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import ProgramsRead, ProgramsWrite
from coachops_runtime.auth.schemas import Accepted
from coachops_runtime.container import RuntimeDep
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.text import Storable
from coachops_runtime.programs import service
from coachops_runtime.programs.schemas import (
    ProgramCreate,
    ProgramPublic,
    ProgramStatus,
    ProgramUpdate,
)

router = APIRouter(prefix="/v1/programs", tags=["programs"])
NamePath = Annotated[
    str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), Storable
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProgramPublic,
    responses=problems(401, 403, 409, 429, 503),
)
async def create_program(
    data: ProgramCreate, context: ProgramsWrite, runtime: RuntimeDep, response: Response
) -> ProgramPublic:
    """Create a CoachingProgram in your namespace; poll ``status_url`` until Ready."""
    program = await service.create(runtime.kube, context, data)
    await audit.record(context, "program.create", "program", program.name)
    response.headers["Location"] = program.status_url
    return program


@router.get("", response_model=list[ProgramPublic], responses=problems(401, 403, 429))
async def list_programs(context: ProgramsRead) -> list[ProgramPublic]:
    """Your programs as the operator synced them into the database."""
    return await service.list_programs(context)


@router.get("/{name}", response_model=ProgramPublic, responses=problems(401, 403, 404, 429, 503))
async def get_program(name: NamePath, context: ProgramsRead, runtime: RuntimeDep) -> ProgramPublic:
    """One program, with the live status of its CoachingProgram object."""
    return await service.get(runtime.kube, context, name)


@router.get(
    "/{name}/status", response_model=ProgramStatus, responses=problems(401, 403, 404, 429, 503)
)
async def get_program_status(
    name: NamePath, context: ProgramsRead, runtime: RuntimeDep
) -> ProgramStatus:
    """Readiness (phase) and conditions, from the status the operator reports."""
    return await service.status(runtime.kube, context, name)


@router.patch(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProgramPublic,
    responses=problems(401, 403, 404, 429, 503),
)
async def update_program(
    name: NamePath,
    data: ProgramUpdate,
    context: ProgramsWrite,
    runtime: RuntimeDep,
    response: Response,
) -> ProgramPublic:
    """Change fields of the program's spec; the operator applies the change."""
    program = await service.update(runtime.kube, context, name, data)
    await audit.record(
        context, "program.update", "program", name, {"fields": sorted(data.model_fields_set)}
    )
    response.headers["Location"] = program.status_url
    return program


@router.delete(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problems(401, 403, 404, 429, 503),
)
async def delete_program(
    name: NamePath, context: ProgramsWrite, runtime: RuntimeDep, response: Response
) -> Accepted:
    """Delete the program; the operator cleans up behind it."""
    await service.delete(runtime.kube, context, name)
    await audit.record(context, "program.delete", "program", name)
    response.headers["Location"] = service.status_url(name)
    return Accepted(detail="deletion requested; the operator removes the program")
