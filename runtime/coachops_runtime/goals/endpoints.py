"""Goals: the end user's own (/v1/me/goals) and the creator's view of an end user's."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import (
    CreatorContext,
    EndUserContext,
    EndUserDep,
    EndUsersRead,
    EndUsersWrite,
)
from coachops_runtime.endusers.repository import EndUserRepository
from coachops_runtime.goals import service
from coachops_runtime.goals.schemas import (
    CreatorGoalCreate,
    GoalClose,
    GoalCreate,
    GoalPublic,
    GoalStatus,
    GoalUpdate,
)
from coachops_runtime.kit.errors import NotFound, problems
from coachops_runtime.kit.pagination import CursorQuery, Page

router = APIRouter(tags=["goals"])
Limit = Annotated[int, Query(ge=1, le=200)]


def _mine(context: EndUserContext) -> service.Owner:
    return service.Owner(
        context.session, context.tenant.creator_id, context.end_user_id, "end_user"
    )


async def _theirs(context: CreatorContext, end_user_id: uuid.UUID) -> service.Owner:
    if await EndUserRepository(context.session).get(end_user_id) is None:
        raise NotFound("no such end user")
    return service.Owner(context.session, context.creator_id, end_user_id, "creator")


@router.get("/v1/me/goals", response_model=Page[GoalPublic], responses=problems(400, 401, 403, 429))
async def my_goals(
    context: EndUserDep,
    goal_status: Annotated[GoalStatus | None, Query(alias="status")] = None,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> Page[GoalPublic]:
    """The end user's goals in this program, oldest first."""
    return await service.page(
        _mine(context),
        limit=limit,
        cursor=cursor,
        program_id=context.program_id,
        status=goal_status,
    )


@router.post(
    "/v1/me/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def create_my_goal(data: GoalCreate, context: EndUserDep) -> GoalPublic:
    """Set a goal in this program; the AI coach sees the active ones."""
    return await service.create(_mine(context), context.program_id, data)


@router.patch(
    "/v1/me/goals/{goal_id}",
    response_model=GoalPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def update_my_goal(goal_id: uuid.UUID, data: GoalUpdate, context: EndUserDep) -> GoalPublic:
    """Change an active goal's title, details or target date."""
    return await service.update(_mine(context), goal_id, data, context.program_id)


@router.post(
    "/v1/me/goals/{goal_id}/close",
    response_model=GoalPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def close_my_goal(goal_id: uuid.UUID, data: GoalClose, context: EndUserDep) -> GoalPublic:
    """Close an active goal as achieved or abandoned."""
    return await service.close(_mine(context), goal_id, data, context.program_id)


@router.get(
    "/v1/end-users/{end_user_id}/goals",
    response_model=Page[GoalPublic],
    responses=problems(400, 401, 403, 404, 429),
)
async def end_user_goals(
    end_user_id: uuid.UUID,
    context: EndUsersRead,
    program_id: uuid.UUID | None = None,
    goal_status: Annotated[GoalStatus | None, Query(alias="status")] = None,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> Page[GoalPublic]:
    """An end user's goals in all your programs (or one), oldest first."""
    owner = await _theirs(context, end_user_id)
    return await service.page(
        owner, limit=limit, cursor=cursor, program_id=program_id, status=goal_status
    )


@router.post(
    "/v1/end-users/{end_user_id}/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def create_end_user_goal(
    end_user_id: uuid.UUID, data: CreatorGoalCreate, context: EndUsersWrite
) -> GoalPublic:
    """Set a goal for an end user in a program they are enrolled in."""
    owner = await _theirs(context, end_user_id)
    goal = await service.create(owner, data.program_id, data)
    await audit.record(
        context, "goal.create", "goal", goal.goal_id, {"end_user_id": str(end_user_id)}
    )
    return goal


@router.patch(
    "/v1/end-users/{end_user_id}/goals/{goal_id}",
    response_model=GoalPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def update_end_user_goal(
    end_user_id: uuid.UUID, goal_id: uuid.UUID, data: GoalUpdate, context: EndUsersWrite
) -> GoalPublic:
    """Change an active goal's title, details or target date."""
    goal = await service.update(await _theirs(context, end_user_id), goal_id, data)
    await audit.record(
        context,
        "goal.update",
        "goal",
        goal_id,
        {"end_user_id": str(end_user_id), "fields": sorted(data.model_fields_set)},
    )
    return goal


@router.post(
    "/v1/end-users/{end_user_id}/goals/{goal_id}/close",
    response_model=GoalPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def close_end_user_goal(
    end_user_id: uuid.UUID, goal_id: uuid.UUID, data: GoalClose, context: EndUsersWrite
) -> GoalPublic:
    """Close an active goal as achieved or abandoned."""
    goal = await service.close(await _theirs(context, end_user_id), goal_id, data)
    await audit.record(context, "goal.close", "goal", goal_id, {"end_user_id": str(end_user_id)})
    return goal
