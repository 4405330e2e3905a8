"""The caller's own tenant: profile, plan and usage."""

from __future__ import annotations

from fastapi import APIRouter

from coachops_runtime.auth.dependencies import CreatorDep
from coachops_runtime.container import RuntimeDep
from coachops_runtime.creators import service
from coachops_runtime.creators.schemas import CreatorPublic, UsagePublic
from coachops_runtime.kit.errors import problems

router = APIRouter(prefix="/v1/creator", tags=["creator"])


@router.get("", response_model=CreatorPublic, responses=problems(401, 403, 429))
async def get_creator(context: CreatorDep) -> CreatorPublic:
    """Your tenant as the operator reconciled it from your Creator object."""
    return service.public(context.tenant)


@router.get("/usage", response_model=UsagePublic, responses=problems(401, 403, 429))
async def get_usage(context: CreatorDep, runtime: RuntimeDep) -> UsagePublic:
    """This month's consumption against your plan."""
    return await service.usage(context.session, runtime.limiter, context.tenant)
