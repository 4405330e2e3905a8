"""Creator API: upcoming proactive messages, skip or send one now, recent decisions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from coachops_runtime.auth.dependencies import ConversationsRead, ConversationsWrite
from coachops_runtime.kit.errors import problems
from coachops_runtime.proactive import service
from coachops_runtime.proactive.schemas import DecisionOut, Outcome, ScheduleOut
from coachops_runtime.proactive.state import proactive_of

router = APIRouter(prefix="/v1/proactive", tags=["proactive"])
Limit = Annotated[int, Query(ge=1, le=500)]
ScheduleId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/schedules", response_model=list[ScheduleOut], responses=problems(400, 401, 403, 429))
async def upcoming(
    context: ConversationsRead,
    program_id: uuid.UUID | None = None,
    end_user_id: uuid.UUID | None = None,
    limit: Limit = 100,
) -> list[ScheduleOut]:
    """Upcoming proactive messages (check-ins, nudges, goal follow-ups), soonest first,
    optionally of one program or end user."""
    return await service.upcoming(context, program_id, end_user_id, limit)


@router.post(
    "/schedules/{schedule_id}/skip",
    response_model=ScheduleOut,
    responses=problems(401, 403, 404, 409, 429),
)
async def skip(
    schedule_id: ScheduleId, context: ConversationsWrite, request: Request
) -> ScheduleOut:
    """Skip the schedule's next occurrence (recorded as a decision, reason creator_skipped);
    returns the schedule with the occurrence after it."""
    return await service.skip(context, proactive_of(request), schedule_id)


@router.post(
    "/schedules/{schedule_id}/send-now",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ScheduleOut,
    responses=problems(401, 403, 404, 409, 429),
)
async def send_now(
    schedule_id: ScheduleId, context: ConversationsWrite, request: Request
) -> ScheduleOut:
    """Send the schedule's next occurrence now: the scheduler sends it within a poll, past
    quiet hours and maxPerDay but never past consent, pauses or a suspended tenant."""
    return await service.send_now(context, proactive_of(request), schedule_id)


@router.get("/decisions", response_model=list[DecisionOut], responses=problems(400, 401, 403, 429))
async def decisions(
    context: ConversationsRead,
    program_id: uuid.UUID | None = None,
    end_user_id: uuid.UUID | None = None,
    outcome: Outcome | None = None,
    limit: Limit = 100,
) -> list[DecisionOut]:
    """Recent decisions of the proactive engine, newest first: each send, deferral and
    skip with its reason."""
    return await service.decisions(context, program_id, end_user_id, outcome, limit)
