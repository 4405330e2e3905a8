"""Conversation and message queries (under the request's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from coachops_runtime.kit.db import Session

_CONVERSATION_COLUMNS = (
    "conversation_id, program_id, end_user_id, channel, ai_paused, paused_at, created_at,"
    " last_message_at"
)
_MESSAGE_COLUMNS = "message_id, conversation_id, direction, author, kind, body, created_at"
_GET = text(
    f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = :conversation_id"
)
_PAUSE = text(
    "UPDATE conversations SET ai_paused = :paused,"
    " paused_at = CASE WHEN :paused THEN now() ELSE NULL END"
    f" WHERE conversation_id = :conversation_id RETURNING {_CONVERSATION_COLUMNS}"
)
_MESSAGES = text(
    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = :conversation_id"
    " AND message_id > :after ORDER BY message_id LIMIT :limit"
)
_ALL_MESSAGES = text(
    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = :conversation_id"
    " ORDER BY message_id"
)
_INSERT_MESSAGE = text(
    "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id, direction,"
    " author, kind, body)"
    " SELECT creator_id, conversation_id, program_id, end_user_id, :direction, :author,"
    " :kind, :body FROM conversations WHERE conversation_id = :conversation_id"
    f" RETURNING {_MESSAGE_COLUMNS}"
)
_TOUCH = text(
    "UPDATE conversations SET last_message_at = now() WHERE conversation_id = :conversation_id"
)
_FIND_OR_CREATE = text(
    "INSERT INTO conversations (creator_id, program_id, end_user_id, channel)"
    " VALUES (:creator_id, :program_id, :end_user_id, :channel)"
    " ON CONFLICT (program_id, end_user_id, channel)"
    " DO UPDATE SET last_message_at = now()"
    f" RETURNING {_CONVERSATION_COLUMNS}"
)
_ME = text(
    "SELECT u.end_user_id, u.display_name, u.time_zone FROM end_users u"
    " JOIN enrolments n ON n.end_user_id = u.end_user_id"
    " WHERE u.end_user_id = :end_user_id AND n.program_id = :program_id"
    " AND n.status = 'active'"
)
_MY_CONVERSATION = text(
    "SELECT conversation_id FROM conversations WHERE end_user_id = :end_user_id"
    " AND program_id = :program_id ORDER BY last_message_at DESC LIMIT 1"
)


class ConversationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def get(self, conversation_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_GET, {"conversation_id": conversation_id})

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        program_id: uuid.UUID | None,
        end_user_id: uuid.UUID | None,
    ) -> list[Any]:
        where = []
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            where.append("(last_message_at, conversation_id) < (:after_at, :after_id)")
            params["after_at"], params["after_id"] = after
        if program_id is not None:
            where.append("program_id = :program_id")
            params["program_id"] = program_id
        if end_user_id is not None:
            where.append("end_user_id = :end_user_id")
            params["end_user_id"] = end_user_id
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        statement = text(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations {clause}"
            " ORDER BY last_message_at DESC, conversation_id DESC LIMIT :limit"
        )
        return await self.session.all(statement, params)

    async def set_paused(self, conversation_id: uuid.UUID, paused: bool) -> Any | None:
        return await self.session.one_or_none(
            _PAUSE, {"conversation_id": conversation_id, "paused": paused}
        )

    async def messages(self, conversation_id: uuid.UUID, after: int, limit: int) -> list[Any]:
        return await self.session.all(
            _MESSAGES, {"conversation_id": conversation_id, "after": after, "limit": limit}
        )

    async def all_messages(self, conversation_id: uuid.UUID) -> list[Any]:
        return await self.session.all(_ALL_MESSAGES, {"conversation_id": conversation_id})

    async def add_message(
        self, conversation_id: uuid.UUID, *, direction: str, author: str, kind: str, body: str
    ) -> Any | None:
        row = await self.session.one_or_none(
            _INSERT_MESSAGE,
            {
                "conversation_id": conversation_id,
                "direction": direction,
                "author": author,
                "kind": kind,
                "body": body,
            },
        )
        if row is not None:
            await self.session.execute(_TOUCH, {"conversation_id": conversation_id})
        return row

    async def find_or_create(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, end_user_id: uuid.UUID, channel: str
    ) -> Any:
        return await self.session.one_or_none(
            _FIND_OR_CREATE,
            {
                "creator_id": creator_id,
                "program_id": program_id,
                "end_user_id": end_user_id,
                "channel": channel,
            },
        )

    async def me(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(
            _ME, {"end_user_id": end_user_id, "program_id": program_id}
        )

    async def my_conversation(
        self, end_user_id: uuid.UUID, program_id: uuid.UUID
    ) -> uuid.UUID | None:
        value = await self.session.scalar(
            _MY_CONVERSATION, {"end_user_id": end_user_id, "program_id": program_id}
        )
        return value if isinstance(value, uuid.UUID) else None
