"""Conversation and message queries (under the request's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session

_CONVERSATION_COLUMNS = (
    "conversation_id, program_id, end_user_id, channel, ai_paused, paused_at, created_at,"
    " last_message_at, ai_unavailable_since"
)
_MESSAGE_COLUMNS = (
    "message_id, conversation_id, direction, author, kind, body, created_at, reply_to, citations"
)
_GET = f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = $1"
_PAUSE = (
    "UPDATE conversations SET ai_paused = $2, paused_at = CASE WHEN $2 THEN now() ELSE NULL END"
    f" WHERE conversation_id = $1 RETURNING {_CONVERSATION_COLUMNS}"
)
_MESSAGES = (
    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1"
    " AND message_id > $2 ORDER BY message_id LIMIT $3"
)
_ALL_MESSAGES = (
    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 ORDER BY message_id"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id, direction,"
    " author, kind, body)"
    " SELECT creator_id, conversation_id, program_id, end_user_id, $2, $3, $4, $5"
    f" FROM conversations WHERE conversation_id = $1 RETURNING {_MESSAGE_COLUMNS}"
)
_TOUCH = "UPDATE conversations SET last_message_at = now() WHERE conversation_id = $1"
_FIND_OR_CREATE = (
    "INSERT INTO conversations (creator_id, program_id, end_user_id, channel)"
    " VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (program_id, end_user_id, channel) DO UPDATE SET last_message_at = now()"
    f" RETURNING {_CONVERSATION_COLUMNS}"
)
_ME = (
    "SELECT u.end_user_id, u.display_name, u.time_zone FROM end_users u"
    " JOIN enrolments n ON n.end_user_id = u.end_user_id"
    " WHERE u.end_user_id = $1 AND n.program_id = $2 AND n.status = 'active'"
)
_MY_CONVERSATION = (
    "SELECT conversation_id FROM conversations WHERE end_user_id = $1"
    " AND program_id = $2 ORDER BY last_message_at DESC LIMIT 1"
)


class ConversationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def get(self, conversation_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_GET, conversation_id)

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        program_id: uuid.UUID | None,
        end_user_id: uuid.UUID | None,
    ) -> list[Any]:
        where: list[str] = []
        args: list[Any] = [limit]  # $1
        if after is not None:
            args += after
            where.append(f"(last_message_at, conversation_id) < (${len(args) - 1}, ${len(args)})")
        if program_id is not None:
            args.append(program_id)
            where.append(f"program_id = ${len(args)}")
        if end_user_id is not None:
            args.append(end_user_id)
            where.append(f"end_user_id = ${len(args)}")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        statement = (
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations {clause}"
            " ORDER BY last_message_at DESC, conversation_id DESC LIMIT $1"
        )
        return await self.session.all(statement, *args)

    async def set_paused(self, conversation_id: uuid.UUID, paused: bool) -> Any | None:
        return await self.session.one_or_none(_PAUSE, conversation_id, paused)

    async def messages(self, conversation_id: uuid.UUID, after: int, limit: int) -> list[Any]:
        return await self.session.all(_MESSAGES, conversation_id, after, limit)

    async def all_messages(self, conversation_id: uuid.UUID) -> list[Any]:
        return await self.session.all(_ALL_MESSAGES, conversation_id)

    async def add_message(
        self, conversation_id: uuid.UUID, *, direction: str, author: str, kind: str, body: str
    ) -> Any | None:
        row = await self.session.one_or_none(
            _INSERT_MESSAGE, conversation_id, direction, author, kind, body
        )
        if row is not None:
            await self.session.execute(_TOUCH, conversation_id)
        return row

    async def find_or_create(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, end_user_id: uuid.UUID, channel: str
    ) -> Any:
        return await self.session.one_or_none(
            _FIND_OR_CREATE, creator_id, program_id, end_user_id, channel
        )

    async def me(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_ME, end_user_id, program_id)

    async def my_conversation(
        self, end_user_id: uuid.UUID, program_id: uuid.UUID
    ) -> uuid.UUID | None:
        value = await self.session.scalar(_MY_CONVERSATION, end_user_id, program_id)
        return value if isinstance(value, uuid.UUID) else None
