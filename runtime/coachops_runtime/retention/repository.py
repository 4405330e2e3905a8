"""Retention queries: the programs with a limit (every tenant), then, under one program's
tenant, keep its daily figures and delete its old rows a batch at a time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.analytics.repository import DAILY_FIGURES
from coachops_runtime.kit.db import Session

_PROGRAMS = "SELECT creator_id, program_id, message_days FROM retention_programs()"
# Every UTC day before the cutoff that still has messages; a day kept before stays as it
# was (its messages are gone or going, so counting again would count less).
_KEEP_DAYS = (
    "INSERT INTO message_days (creator_id, program_id, day, messages_in, messages_out,"
    " active_users, check_ins_sent, check_ins_answered, ai_replies, prompt_tokens,"
    " completion_tokens)"
    " SELECT $1, program_id, day, messages_in, messages_out, active_users, check_ins_sent,"
    " check_ins_answered, ai_replies, prompt_tokens, completion_tokens FROM ("
    + DAILY_FIGURES.format(where="m.program_id = $2 AND m.created_at < $3")
    + ") f ON CONFLICT (program_id, day) DO NOTHING"
)
# The messages_program_day index (creator_id, program_id, created_at) finds a batch.
_DELETE_MESSAGES = (
    "DELETE FROM messages WHERE message_id IN (SELECT message_id FROM messages"
    " WHERE creator_id = $1 AND program_id = $2 AND created_at < $3 LIMIT $4)"
)
_DELETE_DELIVERIES = (
    "DELETE FROM channel_outbox WHERE delivery_id IN (SELECT delivery_id FROM channel_outbox"
    " WHERE creator_id = $1 AND program_id = $2 AND created_at < $3"
    " AND state IN ('sent', 'dead', 'suppressed') LIMIT $4)"
)


def _deleted(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class RetentionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def programs(self) -> list[Any]:
        return await self.session.all(_PROGRAMS)

    async def keep_days(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, cutoff: datetime
    ) -> int:
        return _deleted(await self.session.execute(_KEEP_DAYS, creator_id, program_id, cutoff))

    async def delete_messages(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, cutoff: datetime, limit: int
    ) -> int:
        return _deleted(
            await self.session.execute(_DELETE_MESSAGES, creator_id, program_id, cutoff, limit)
        )

    async def delete_deliveries(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, cutoff: datetime, limit: int
    ) -> int:
        return _deleted(
            await self.session.execute(_DELETE_DELIVERIES, creator_id, program_id, cutoff, limit)
        )
