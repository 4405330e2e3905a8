"""Conversations: read, export, human takeover, and the end user's side of the chat."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

from coachops_runtime.ai import replies
from coachops_runtime.auth.dependencies import CreatorContext, EndUserContext, ai_gate
from coachops_runtime.container import Runtime
from coachops_runtime.conversations.repository import ConversationRepository
from coachops_runtime.conversations.schemas import (
    ConversationPublic,
    EndUserMe,
    EndUserMessageAccepted,
    MessagePublic,
)
from coachops_runtime.kit.errors import NotFound
from coachops_runtime.kit.pagination import (
    Page,
    decode_keyset,
    decode_position,
    encode_keyset,
    encode_position,
)

ConversationPage = Page[ConversationPublic]
MessagePage = Page[MessagePublic]


async def _require(repo: ConversationRepository, conversation_id: uuid.UUID) -> Any:
    row = await repo.get(conversation_id)
    if row is None:
        raise NotFound("no such conversation")
    return row


async def page(
    context: CreatorContext,
    *,
    limit: int,
    cursor: str | None,
    program_id: uuid.UUID | None,
    end_user_id: uuid.UUID | None,
) -> ConversationPage:
    after = decode_keyset(cursor) if cursor else None
    rows = await ConversationRepository(context.session).page(
        limit=limit + 1, after=after, program_id=program_id, end_user_id=end_user_id
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_keyset(last["last_message_at"], last["conversation_id"])
    return ConversationPage.model_validate(
        {"items": [dict(row) for row in rows[:limit]], "next_cursor": next_cursor}
    )


async def get(context: CreatorContext, conversation_id: uuid.UUID) -> ConversationPublic:
    return ConversationPublic(
        **await _require(ConversationRepository(context.session), conversation_id)
    )


async def messages(
    context: CreatorContext | EndUserContext,
    conversation_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> MessagePage:
    repo = ConversationRepository(context.session)
    rows = await repo.messages(conversation_id, decode_position(cursor) if cursor else 0, limit + 1)
    if not rows and isinstance(context, CreatorContext):
        await _require(repo, conversation_id)  # an empty page, or no such conversation?
    next_cursor = encode_position(rows[limit - 1]["message_id"]) if len(rows) > limit else None
    # One validation in pydantic-core for the whole page.
    return MessagePage.model_validate(
        {"items": [dict(row) for row in rows[:limit]], "next_cursor": next_cursor}
    )


async def export(context: CreatorContext, conversation_id: uuid.UUID, fmt: str) -> tuple[str, str]:
    """The whole transcript as (media type, body)."""
    repo = ConversationRepository(context.session)
    conversation = ConversationPublic(**await _require(repo, conversation_id))
    rows = [MessagePublic(**row) for row in await repo.all_messages(conversation_id)]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["message_id", "created_at", "direction", "author", "kind", "body"])
        for m in rows:
            writer.writerow(
                [m.message_id, m.created_at.isoformat(), m.direction, m.author, m.kind, m.body]
            )
        return "text/csv; charset=utf-8", buffer.getvalue()
    document = {
        "conversation": conversation.model_dump(mode="json"),
        "messages": [m.model_dump(mode="json") for m in rows],
    }
    return "application/json", json.dumps(document)


async def set_paused(
    context: CreatorContext, conversation_id: uuid.UUID, paused: bool
) -> ConversationPublic:
    row = await ConversationRepository(context.session).set_paused(conversation_id, paused)
    if row is None:
        raise NotFound("no such conversation")
    return ConversationPublic(**row)


async def reply_as_creator(
    context: CreatorContext, conversation_id: uuid.UUID, body: str
) -> MessagePublic:
    row = await ConversationRepository(context.session).add_message(
        conversation_id, direction="out", author="creator", kind="chat", body=body
    )
    if row is None:
        raise NotFound("no such conversation")
    return MessagePublic(**row)


# ---------------------------------------------------------------- the end user's side


async def me(context: EndUserContext) -> EndUserMe:
    row = await ConversationRepository(context.session).me(context.end_user_id, context.program_id)
    if row is None:
        raise NotFound("not enrolled in this program any more")
    return EndUserMe(program_id=context.program_id, **row)


async def end_user_message(
    runtime: Runtime, context: EndUserContext, body: str, channel: str
) -> EndUserMessageAccepted:
    repo = ConversationRepository(context.session)
    if await repo.me(context.end_user_id, context.program_id) is None:
        raise NotFound("not enrolled in this program any more")
    conversation = await repo.find_or_create(
        context.tenant.creator_id, context.program_id, context.end_user_id, channel
    )
    paused = bool(conversation["ai_paused"])
    if not paused:
        # The message is for the AI coach: the program's daily limit first, then a
        # reservation on the monthly quota (fail closed without Redis), which the worker
        # gives back when it generates nothing.
        await replies.check_daily_limit(context.session, context.end_user_id, context.program_id)
        await ai_gate(runtime, context.tenant)
    row = await repo.add_message(
        conversation["conversation_id"], direction="in", author="end_user", kind="chat", body=body
    )
    assert row is not None
    if paused:
        return EndUserMessageAccepted(message=MessagePublic(**row), reply="human")
    # In the request's transaction: the message is never stored without its reply job.
    await replies.enqueue(context, conversation["conversation_id"], row["message_id"])
    return EndUserMessageAccepted(
        message=MessagePublic(**row),
        reply="queued",
        reply_stream=f"/v1/me/messages/{row['message_id']}/reply",
    )


async def my_messages(context: EndUserContext, *, cursor: str | None, limit: int) -> MessagePage:
    conversation_id = await ConversationRepository(context.session).my_conversation(
        context.end_user_id, context.program_id
    )
    if conversation_id is None:
        return MessagePage(items=[], next_cursor=None)
    return await messages(context, conversation_id, cursor=cursor, limit=limit)
