"""The creator's list of safety events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from coachops_runtime.ai.safety.schemas import SafetyEventPublic
from coachops_runtime.ai.safety.service import page
from coachops_runtime.auth.dependencies import ConversationsRead
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.pagination import CursorQuery, Page

router = APIRouter(tags=["safety"])


@router.get(
    "/v1/safety-events",
    response_model=Page[SafetyEventPublic],
    responses=problems(400, 401, 403, 429),
)
async def list_safety_events(
    context: ConversationsRead,
    program_id: uuid.UUID | None = None,
    end_user_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[SafetyEventPublic]:
    """Messages the safety check stopped (crisis language or a blocked topic), newest
    first. The message text is not part of an event: read it in the conversation."""
    return await page(
        context,
        limit=limit,
        cursor=cursor,
        filters={
            "program_id": program_id,
            "end_user_id": end_user_id,
            "conversation_id": conversation_id,
        },
    )
