"""Queries on the operator's copy of the Creator (read-only for the runtime)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session

_TENANT = "SELECT creator_id, name, display_name, contact_email, plan, suspended FROM creators"
_TENANT_FOR_NAME = "SELECT tenant_for_name($1)"
_COUNTS = (
    "SELECT (SELECT count(*) FROM programs WHERE deleted_at IS NULL) AS programs,"
    " (SELECT count(*) FROM end_users) AS end_users"
)

# AI replies since the start of the month ($1); messages_program_day serves the range.
_AI_USAGE = (
    "SELECT count(*) AS replies, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
    " coalesce(sum(completion_tokens), 0) AS completion_tokens"
    " FROM messages WHERE author = 'ai' AND created_at >= $1"
)


class CreatorRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def current(self) -> Any | None:
        """The tenant row the transaction is bound to (RLS admits at most that one)."""
        return await self.session.one_or_none(_TENANT)

    async def tenant_for_name(self, name: str) -> uuid.UUID | None:
        value = await self.session.scalar(_TENANT_FOR_NAME, name)
        return value if isinstance(value, uuid.UUID) else None

    async def counts(self) -> Any:
        return await self.session.one_or_none(_COUNTS)

    async def ai_usage(self, since: datetime) -> Any:
        return await self.session.one_or_none(_AI_USAGE, since)
