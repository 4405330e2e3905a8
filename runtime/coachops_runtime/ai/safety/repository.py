"""Safety events, the AI pause and the alert e-mail (under the job's or request's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session

_COLUMNS = (
    "event_id, program_id, end_user_id, conversation_id, message_id, kind, category, topic,"
    " layer, score, ai_paused, alert_queued, created_at"
)
_INSERT = (
    "INSERT INTO safety_events (creator_id, program_id, end_user_id, conversation_id,"
    " message_id, kind, category, topic, layer, score, ai_paused, alert_queued)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    f" ON CONFLICT (message_id) DO NOTHING RETURNING {_COLUMNS}"
)
_BY_MESSAGE = f"SELECT {_COLUMNS} FROM safety_events WHERE message_id = $1"
_PAUSE = (
    "UPDATE conversations SET ai_paused = true, paused_at = now()"
    " WHERE conversation_id = $1 AND NOT ai_paused"
)
_QUEUE_EMAIL = (
    "INSERT INTO email_outbox (creator_id, to_address, template, payload)"
    " VALUES ($1, $2, $3, CAST($4 AS jsonb))"
)


class SafetyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def record(self, creator_id: uuid.UUID, values: dict[str, Any]) -> Any | None:
        """The new event's row; None when the message already has one."""
        return await self.session.one_or_none(
            _INSERT,
            creator_id,
            values["program_id"],
            values["end_user_id"],
            values["conversation_id"],
            values["message_id"],
            values["kind"],
            values["category"],
            values["topic"],
            values["layer"],
            values["score"],
            values["ai_paused"],
            values["alert_queued"],
        )

    async def by_message(self, message_id: int) -> Any | None:
        return await self.session.one_or_none(_BY_MESSAGE, message_id)

    async def pause(self, conversation_id: uuid.UUID) -> None:
        await self.session.execute(_PAUSE, conversation_id)

    async def queue_alert(self, creator_id: uuid.UUID, to_address: str, payload: str) -> None:
        await self.session.execute(_QUEUE_EMAIL, creator_id, to_address, "safety_alert", payload)

    async def page(
        self,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
        filters: dict[str, uuid.UUID | None],
    ) -> list[Any]:
        """Newest first; ``filters`` by program, end user or conversation id."""
        where: list[str] = []
        args: list[Any] = [limit]
        if before is not None:
            args += before
            where.append(f"(created_at, event_id) < (${len(args) - 1}, ${len(args)})")
        for column in ("program_id", "end_user_id", "conversation_id"):
            if filters.get(column) is not None:
                args.append(filters[column])
                where.append(f"{column} = ${len(args)}")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return await self.session.all(
            f"SELECT {_COLUMNS} FROM safety_events {clause}"
            " ORDER BY created_at DESC, event_id DESC LIMIT $1",
            *args,
        )
