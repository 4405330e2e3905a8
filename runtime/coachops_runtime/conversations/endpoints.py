"""Conversations for creators (read, export, take over) and for end users (/v1/me)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import ConversationsRead, ConversationsWrite, EndUserDep
from coachops_runtime.container import RuntimeDep
from coachops_runtime.conversations import service
from coachops_runtime.conversations.schemas import (
    ConversationPublic,
    CreatorReplyCreate,
    EndUserMe,
    EndUserMessageAccepted,
    EndUserMessageCreate,
    MessagePublic,
)
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.pagination import CursorQuery, Page

router = APIRouter(tags=["conversations"])
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get(
    "/v1/conversations",
    response_model=Page[ConversationPublic],
    responses=problems(400, 401, 403, 429),
)
async def list_conversations(
    context: ConversationsRead,
    program_id: uuid.UUID | None = None,
    end_user_id: uuid.UUID | None = None,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> Page[ConversationPublic]:
    """Conversations, most recently active first."""
    return await service.page(
        context, limit=limit, cursor=cursor, program_id=program_id, end_user_id=end_user_id
    )


@router.get(
    "/v1/conversations/{conversation_id}",
    response_model=ConversationPublic,
    responses=problems(401, 403, 404, 429),
)
async def get_conversation(
    conversation_id: uuid.UUID, context: ConversationsRead
) -> ConversationPublic:
    return await service.get(context, conversation_id)


@router.get(
    "/v1/conversations/{conversation_id}/messages",
    response_model=Page[MessagePublic],
    responses=problems(400, 401, 403, 404, 429),
)
async def list_messages(
    conversation_id: uuid.UUID,
    context: ConversationsRead,
    cursor: CursorQuery = None,
    limit: Limit = 50,
) -> Page[MessagePublic]:
    """Messages of one conversation, oldest first."""
    return await service.messages(context, conversation_id, cursor=cursor, limit=limit)


@router.get(
    "/v1/conversations/{conversation_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The transcript",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **problems(401, 403, 404, 429),
    },
)
async def export_conversation(
    conversation_id: uuid.UUID,
    context: ConversationsRead,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """The whole transcript as JSON or CSV."""
    media_type, body = await service.export(context, conversation_id, format)
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="conversation-{conversation_id}.{format}"'
        },
    )


@router.post(
    "/v1/conversations/{conversation_id}/pause",
    response_model=ConversationPublic,
    responses=problems(401, 403, 404, 429),
)
async def pause_ai(conversation_id: uuid.UUID, context: ConversationsWrite) -> ConversationPublic:
    """Human takeover: the AI stops replying in this conversation."""
    conversation = await service.set_paused(context, conversation_id, True)
    await audit.record(context, "conversation.pause", "conversation", conversation_id)
    return conversation


@router.post(
    "/v1/conversations/{conversation_id}/resume",
    response_model=ConversationPublic,
    responses=problems(401, 403, 404, 429),
)
async def resume_ai(conversation_id: uuid.UUID, context: ConversationsWrite) -> ConversationPublic:
    """Hand the conversation back to the AI coach."""
    conversation = await service.set_paused(context, conversation_id, False)
    await audit.record(context, "conversation.resume", "conversation", conversation_id)
    return conversation


@router.post(
    "/v1/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessagePublic,
    responses=problems(401, 403, 404, 429),
)
async def reply_as_creator(
    conversation_id: uuid.UUID, data: CreatorReplyCreate, context: ConversationsWrite
) -> MessagePublic:
    """Reply to the end user as the creator. The reply is stored in the conversation, where
    ``GET /v1/me/messages`` shows it; delivery on the conversation's channel is planned."""
    message = await service.reply_as_creator(context, conversation_id, data.body)
    await audit.record(
        context, "conversation.reply", "conversation", conversation_id,
        {"message_id": message.message_id},
    )  # fmt: skip
    return message


@router.get("/v1/me", response_model=EndUserMe, responses=problems(401, 403, 404, 429))
async def me(context: EndUserDep) -> EndUserMe:
    """The end user behind an end-user token."""
    return await service.me(context)


@router.post(
    "/v1/me/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EndUserMessageAccepted,
    responses=problems(401, 403, 404, 429, 503),
)
async def send_message(
    data: EndUserMessageCreate, context: EndUserDep, runtime: RuntimeDep
) -> EndUserMessageAccepted:
    """Send a message to the coach. It is stored and charged to the monthly AI message
    quota unless a human has taken over; the AI reply is planned (none is generated yet)."""
    return await service.end_user_message(runtime, context, data.body, data.channel)


@router.get(
    "/v1/me/messages",
    response_model=Page[MessagePublic],
    responses=problems(400, 401, 403, 429),
)
async def my_messages(
    context: EndUserDep, cursor: CursorQuery = None, limit: Limit = 50
) -> Page[MessagePublic]:
    """The end user's conversation in this program, oldest first."""
    return await service.my_messages(context, cursor=cursor, limit=limit)
