"""Webhooks at ``/v1/hooks/{channel}/{program_id}`` and the creator's view of deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import ConversationsRead, ConversationsWrite
from coachops_runtime.channels import inbound
from coachops_runtime.channels.email.endpoints import router as email_router
from coachops_runtime.channels.repository import ChannelRepository
from coachops_runtime.channels.schemas import DeliveryPublic, DeliveryState
from coachops_runtime.kit.errors import Conflict, NotFound, problems
from coachops_runtime.kit.pagination import (
    INT64_MAX,
    CursorQuery,
    Page,
    decode_position,
    encode_position,
)
from coachops_runtime.kit.text import Storable

router = APIRouter(tags=["channels"])
Limit = Annotated[int, Query(ge=1, le=200)]
DeliveryId = Annotated[int, Path(ge=1, le=INT64_MAX)]
ChannelName = Annotated[str, Storable]  # an unknown name is a 404 (inbound.py)


@router.post(
    "/v1/hooks/{channel}/{program_id}",
    response_class=Response,
    responses={200: {"description": "Accepted"}, **problems(400, 401, 403, 404, 413, 503)},
)
async def webhook(channel: ChannelName, program_id: uuid.UUID, request: Request) -> Response:
    """A provider's webhook, signed with the program's channel secret (see docs/channels.md).
    Forged or stale requests get 401 and are not stored; a duplicate is acknowledged and
    not processed again."""
    return await inbound.receive(request, channel, program_id)


@router.get(
    "/v1/hooks/{channel}/{program_id}",
    response_class=Response,
    responses={200: {"description": "The challenge"}, **problems(401, 404, 503)},
)
async def webhook_handshake(
    channel: ChannelName, program_id: uuid.UUID, request: Request
) -> Response:
    """WhatsApp's subscription check: ``hub.challenge`` when ``hub.verify_token`` matches."""
    return await inbound.handshake(request, channel, program_id)


@router.get(
    "/v1/channel-deliveries",
    response_model=Page[DeliveryPublic],
    responses=problems(400, 401, 403, 429),
)
async def list_deliveries(
    context: ConversationsRead,
    state: DeliveryState = "dead",
    program_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> Page[DeliveryPublic]:
    """Deliveries to provider channels in one state (dead-lettered by default), oldest
    first."""
    rows = await ChannelRepository(context.session).deliveries(
        state=state,
        program_id=program_id,
        after=decode_position(cursor) if cursor else 0,
        limit=limit + 1,
    )
    next_cursor = encode_position(rows[limit - 1]["delivery_id"]) if len(rows) > limit else None
    return Page[DeliveryPublic].model_validate(
        {"items": [dict(row) for row in rows[:limit]], "next_cursor": next_cursor}
    )


@router.post(
    "/v1/channel-deliveries/{delivery_id}/retry",
    response_model=DeliveryPublic,
    responses=problems(401, 403, 404, 409, 429),
)
async def retry_delivery(delivery_id: DeliveryId, context: ConversationsWrite) -> DeliveryPublic:
    """Queue a dead-lettered delivery again, with a fresh count of attempts."""
    repo = ChannelRepository(context.session)
    row = await repo.retry_dead(delivery_id)
    if row is None:
        if await repo.delivery(delivery_id) is None:
            raise NotFound("no such delivery")
        raise Conflict("only a dead delivery can be retried")
    await audit.record(context, "delivery.retry", "delivery", delivery_id)
    return DeliveryPublic(**row)


# One-click unsubscribe of the e-mail channel (email/endpoints.py), under the same prefix.
router.routes.extend(email_router.routes)
