"""Per-person export and erasure, for the creator and for the end user themself.

Exports are jobs: ``POST …/exports`` starts one and answers 202 with ``Location`` (its
status); ``GET …/export`` is the idempotent form (the person's export still open, or a new
one): 202 with ``Location`` while it is built, 200 once ready. The status carries a
single-use ``download_url``. Erasures answer 202 with the job's status; ``DELETE /v1/me``
needs a confirmation from ``POST /v1/me/erasure-confirmation``.
"""

from __future__ import annotations

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from coachops_runtime.auth.dependencies import EndUserDep, EndUsersRead, EndUsersWrite
from coachops_runtime.container import SessionDep
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.text import Storable
from coachops_runtime.privacy import service
from coachops_runtime.privacy.export import MEDIA_TYPES
from coachops_runtime.privacy.schemas import (
    ErasureConfirmation,
    ErasurePublic,
    ExportFormat,
    ExportPublic,
)
from coachops_runtime.privacy.settings import PrivacySettings

router = APIRouter(tags=["privacy"])
FormatQuery = Annotated[ExportFormat, Query(description="json, or a zip holding export.json")]
RETRY_SECONDS = "2"


@functools.cache
def settings() -> PrivacySettings:
    """Read once per process, as the other settings are."""
    return PrivacySettings()


def _accepted(response: Response, public: ExportPublic) -> ExportPublic:
    if public.state in ("pending", "running"):
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = public.status_url
        response.headers["Retry-After"] = RETRY_SECONDS
    return public


# ---------------------------------------------------------------------- creator


@router.post(
    "/v1/end-users/{end_user_id}/exports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportPublic,
    responses=problems(401, 403, 404, 429),
)
async def start_end_user_export(
    end_user_id: uuid.UUID, context: EndUsersRead, response: Response, format: FormatQuery = "json"
) -> ExportPublic:
    """Start an archive of everything held about the end user (needs ``endusers:read`` and
    ``conversations:read``); poll ``Location``."""
    public = await service.creator_export(
        context, end_user_id, format, reuse=False, settings=settings()
    )
    response.headers["Location"] = public.status_url
    return public


@router.get(
    "/v1/end-users/{end_user_id}/export",
    response_model=ExportPublic,
    responses={
        202: {"model": ExportPublic, "description": "Being built: poll Location"},
        **problems(401, 403, 404, 429),
    },
)
async def end_user_export(
    end_user_id: uuid.UUID, context: EndUsersRead, response: Response, format: FormatQuery = "json"
) -> ExportPublic:
    """The end user's open export (pending, running or ready), or a new one: 202 with
    ``Location`` while it is built, 200 with ``download_url`` when ready."""
    public = await service.creator_export(
        context, end_user_id, format, reuse=True, settings=settings()
    )
    return _accepted(response, public)


@router.get(
    "/v1/end-users/{end_user_id}/exports/{export_id}",
    response_model=ExportPublic,
    responses=problems(401, 403, 404, 429),
)
async def end_user_export_status(
    end_user_id: uuid.UUID, export_id: uuid.UUID, context: EndUsersRead, response: Response
) -> ExportPublic:
    """An export's state and progress; ``download_url`` when ready."""
    service.check_export_scopes(context)
    public = await service.export_status(
        context.session,
        creator_id=context.creator_id,
        export_id=export_id,
        end_user_id=end_user_id,
        settings=settings(),
        for_creator=True,
    )
    if public.state in ("pending", "running"):
        response.headers["Retry-After"] = RETRY_SECONDS
    return public


@router.delete(
    "/v1/end-users/{end_user_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasurePublic,
    responses=problems(401, 403, 404, 429),
)
async def erase_end_user(
    end_user_id: uuid.UUID, context: EndUsersWrite, response: Response
) -> ErasurePublic:
    """Erase the end user from every store (see docs/data.md); 202 with ``Location``. A
    second call while it runs returns the same erasure; after it, the end user is 404."""
    public = await service.creator_erasure(context, end_user_id)
    response.headers["Location"] = str(public.status_url)
    return public


@router.get(
    "/v1/erasures/{erasure_id}",
    response_model=ErasurePublic,
    responses=problems(401, 403, 404, 429),
)
async def erasure_status(erasure_id: uuid.UUID, context: EndUsersRead) -> ErasurePublic:
    """An erasure's steps; once done, its tombstone (no personal data)."""
    return await service.erasure_status(context.session, erasure_id)


# ---------------------------------------------------------------------- end user


@router.post(
    "/v1/me/exports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportPublic,
    responses=problems(401, 403, 404, 429),
)
async def start_own_export(
    context: EndUserDep, response: Response, format: FormatQuery = "json"
) -> ExportPublic:
    """Start an archive of everything held about you; poll ``Location``."""
    public = await service.own_export(context, format, reuse=False, settings=settings())
    response.headers["Location"] = public.status_url
    return public


@router.get(
    "/v1/me/export",
    response_model=ExportPublic,
    responses={
        202: {"model": ExportPublic, "description": "Being built: poll Location"},
        **problems(401, 403, 404, 429),
    },
)
async def own_export(
    context: EndUserDep, response: Response, format: FormatQuery = "json"
) -> ExportPublic:
    """Your open export, or a new one: 202 with ``Location`` while it is built, 200 with
    ``download_url`` when ready."""
    public = await service.own_export(context, format, reuse=True, settings=settings())
    return _accepted(response, public)


@router.get(
    "/v1/me/exports/{export_id}",
    response_model=ExportPublic,
    responses=problems(401, 403, 404, 429),
)
async def own_export_status(
    export_id: uuid.UUID, context: EndUserDep, response: Response
) -> ExportPublic:
    public = await service.export_status(
        context.session,
        creator_id=context.tenant.creator_id,
        export_id=export_id,
        end_user_id=context.end_user_id,
        settings=settings(),
        for_creator=False,
    )
    if public.state in ("pending", "running"):
        response.headers["Retry-After"] = RETRY_SECONDS
    return public


@router.post(
    "/v1/me/erasure-confirmation",
    status_code=status.HTTP_201_CREATED,
    response_model=ErasureConfirmation,
    responses=problems(400, 401, 403, 404, 429),
)
async def ask_erasure_confirmation(context: EndUserDep) -> ErasureConfirmation:
    """The first step of erasing yourself: a confirmation code for ``DELETE /v1/me``."""
    return await service.ask_confirmation(context, settings())


ConfirmationQuery = Annotated[
    str,
    Query(min_length=1, max_length=200, description="From POST /v1/me/erasure-confirmation"),
    Storable,
]


@router.delete(
    "/v1/me",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasurePublic,
    responses=problems(401, 403, 404, 429),
)
async def erase_me(context: EndUserDep, confirmation: ConfirmationQuery) -> ErasurePublic:
    """Erase everything held about you, with the code from the confirmation step."""
    return await service.confirmed_erasure(context, confirmation)


# ---------------------------------------------------------------------- the link

DownloadToken = Annotated[str, Field(min_length=1, max_length=300), Storable]


@router.get(
    "/v1/export-archives/{token}",
    response_class=Response,
    responses={
        200: {
            "description": "The archive (once)",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
        **problems(401, 404),
    },
)
async def download_archive(token: DownloadToken, session: SessionDep) -> Response:
    """A ready archive through its single-use link (no Authorization header: the token is
    the credential; a malformed one is 401, one used, expired or unknown 404); the archive
    is deleted once sent."""
    archive, fmt, export_id = await service.download(session, token)
    return Response(
        archive,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="coachops-export-{export_id}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
