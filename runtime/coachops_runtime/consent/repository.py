"""Consent history queries (under the caller's tenant).

``consent_events`` is append-only for the runtime; a trigger (migration 0011) derives the
current state in ``consents`` from each new event, in the same statement.
"""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.kit.db import Session

_EVENT_COLUMNS = (
    "event_id, end_user_id, channel, granted, address, source, actor_id, request_id, created_at"
)
_RECORD = (
    "INSERT INTO consent_events (creator_id, end_user_id, channel, granted, address, source,"
    " actor_id, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    f" RETURNING {_EVENT_COLUMNS}"
)
_CURRENT = (
    "SELECT channel, granted, address, updated_at FROM consents"
    " WHERE end_user_id = $1 AND channel = $2"
)


class ConsentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def record(
        self,
        creator_id: uuid.UUID,
        end_user_id: uuid.UUID,
        channel: str,
        *,
        granted: bool,
        address: str,
        source: str,
        actor_id: uuid.UUID | None,
        request_id: str,
    ) -> Any:
        """Append one change; ``consents`` follows it in the same statement."""
        return await self.session.one_or_none(
            _RECORD,
            creator_id,
            end_user_id,
            channel,
            granted,
            address,
            source,
            actor_id,
            request_id,
        )

    async def current(self, end_user_id: uuid.UUID, channel: str) -> Any | None:
        return await self.session.one_or_none(_CURRENT, end_user_id, channel)

    async def history_by_end_user(
        self, end_user_id: uuid.UUID, *, after: int = 0, limit: int | None = None
    ) -> list[Any]:
        """One end user's consent changes, oldest first, from ``after`` (an event id);
        every change when ``limit`` is None (what an export needs)."""
        return await self.session.all(
            f"SELECT {_EVENT_COLUMNS} FROM consent_events"
            " WHERE end_user_id = $1 AND event_id > $2 ORDER BY event_id LIMIT $3",
            end_user_id,
            after,
            limit,
        )
