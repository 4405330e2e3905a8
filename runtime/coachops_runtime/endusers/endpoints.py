"""End users of the caller's programs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import Field

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import EndUsersRead, EndUsersWrite
from coachops_runtime.endusers import service
from coachops_runtime.endusers.schemas import (
    Channel,
    ConsentPublic,
    ConsentUpdate,
    EndUserCreate,
    EndUserDetail,
    EndUserPublic,
    EndUserUpdate,
    EnrolmentCreate,
    EnrolmentPublic,
)
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.pagination import CursorQuery, Page
from coachops_runtime.kit.text import Storable

router = APIRouter(prefix="/v1/end-users", tags=["end users"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EndUserDetail,
    responses=problems(401, 403, 404, 409, 429),
)
async def invite_end_user(data: EndUserCreate, context: EndUsersWrite) -> EndUserDetail:
    """Invite an end user (an invitation e-mail is queued when an e-mail is given)."""
    detail = await service.invite(context, data)
    await audit.record(context, "end_user.invite", "end_user", detail.end_user_id)
    return detail


@router.get("", response_model=Page[EndUserPublic], responses=problems(400, 401, 403, 429))
async def list_end_users(
    context: EndUsersRead,
    search: Annotated[Annotated[str, Field(max_length=200), Storable] | None, Query()] = None,
    program_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[EndUserPublic]:
    """End users, oldest first; ``search`` matches e-mail, name or external id."""
    return await service.page(
        context, limit=limit, cursor=cursor, search=search, program_id=program_id
    )


@router.get("/{end_user_id}", response_model=EndUserDetail, responses=problems(401, 403, 404, 429))
async def get_end_user(end_user_id: uuid.UUID, context: EndUsersRead) -> EndUserDetail:
    """One end user with enrolments and consents."""
    return await service.detail(context, end_user_id)


@router.patch(
    "/{end_user_id}", response_model=EndUserDetail, responses=problems(401, 403, 404, 409, 429)
)
async def update_end_user(
    end_user_id: uuid.UUID, data: EndUserUpdate, context: EndUsersWrite
) -> EndUserDetail:
    """Update the profile (time zone, locale, names, ids)."""
    detail = await service.update(context, end_user_id, data)
    await audit.record(
        context,
        "end_user.update",
        "end_user",
        end_user_id,
        {"fields": sorted(data.model_fields_set)},
    )
    return detail


@router.post(
    "/{end_user_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrolmentPublic,
    responses=problems(401, 403, 404, 429),
)
async def enrol_end_user(
    end_user_id: uuid.UUID, data: EnrolmentCreate, context: EndUsersWrite
) -> EnrolmentPublic:
    """Enrol the end user in one of your programs."""
    enrolment = await service.enrol(context, end_user_id, data.program_id)
    await audit.record(
        context, "end_user.enrol", "end_user", end_user_id, {"program_id": str(data.program_id)}
    )
    return enrolment


@router.delete(
    "/{end_user_id}/enrolments/{program_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 429),
)
async def unenrol_end_user(
    end_user_id: uuid.UUID, program_id: uuid.UUID, context: EndUsersWrite
) -> None:
    """Remove the end user from a program."""
    await service.unenrol(context, end_user_id, program_id)
    await audit.record(
        context, "end_user.unenrol", "end_user", end_user_id, {"program_id": str(program_id)}
    )


@router.put(
    "/{end_user_id}/consents/{channel}",
    response_model=ConsentPublic,
    responses=problems(401, 403, 404, 429),
)
async def set_consent(
    end_user_id: uuid.UUID, channel: Channel, data: ConsentUpdate, context: EndUsersWrite
) -> ConsentPublic:
    """Record whether the end user agreed to be contacted on a channel; the change is
    added to their consent history."""
    consent = await service.set_consent(context, end_user_id, channel, data)
    await audit.record(
        context,
        "end_user.consent",
        "end_user",
        end_user_id,
        {"channel": channel, "granted": data.granted},
    )
    return consent
