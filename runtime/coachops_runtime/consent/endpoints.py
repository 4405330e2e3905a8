"""A person's consent history, for the creator and for the end user themselves; the end
user's own consent changes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from coachops_runtime.auth.dependencies import EndUserDep, EndUsersRead
from coachops_runtime.consent import service
from coachops_runtime.consent.schemas import ConsentEventPublic
from coachops_runtime.endusers.repository import EndUserRepository
from coachops_runtime.endusers.schemas import Channel, ConsentPublic, ConsentUpdate
from coachops_runtime.kit.errors import NotFound, problems
from coachops_runtime.kit.pagination import CursorQuery, Page

router = APIRouter(tags=["consent"])

Limit = Annotated[int, Query(ge=1, le=200)]


@router.get(
    "/v1/end-users/{end_user_id}/consent-history",
    response_model=Page[ConsentEventPublic],
    responses=problems(400, 401, 403, 404, 429),
)
async def end_user_consent_history(
    end_user_id: uuid.UUID, context: EndUsersRead, cursor: CursorQuery = None, limit: Limit = 50
) -> Page[ConsentEventPublic]:
    """Every consent change of one end user, on every channel, oldest first."""
    if await EndUserRepository(context.session).get(end_user_id) is None:
        raise NotFound("no such end user")
    return await service.history_page(context.session, end_user_id, limit=limit, cursor=cursor)


@router.get(
    "/v1/me/consent-history",
    response_model=Page[ConsentEventPublic],
    responses=problems(400, 401, 403, 429),
)
async def my_consent_history(
    context: EndUserDep, cursor: CursorQuery = None, limit: Limit = 50
) -> Page[ConsentEventPublic]:
    """Every change of your consent to be contacted, on every channel, oldest first."""
    return await service.history_page(
        context.session, context.end_user_id, limit=limit, cursor=cursor
    )


@router.put(
    "/v1/me/consents/{channel}",
    response_model=ConsentPublic,
    responses=problems(401, 403, 429),
)
async def set_my_consent(
    channel: Channel, data: ConsentUpdate, context: EndUserDep
) -> ConsentPublic:
    """Agree or decline to be contacted on a channel; the change is added to your consent
    history."""
    row = await service.record_change(
        context.session,
        context.tenant.creator_id,
        context.end_user_id,
        channel,
        granted=data.granted,
        address=data.address,
        source="end_user",
    )
    return ConsentPublic(**row)
