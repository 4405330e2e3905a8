"""The program setting the widget's CORS reads, under the token's tenant (RLS)."""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.kit.db import Session

_CHANNELS = (
    "SELECT spec -> 'channels' AS channels FROM programs"
    " WHERE program_id = $1 AND deleted_at IS NULL"
)


class WidgetRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def allowed_origins(self, program_id: uuid.UUID) -> frozenset[str]:
        """The web channel's ``allowedOrigins`` of a program (empty when it names none or
        the program is not the bound tenant's)."""
        row = await self.session.one_or_none(_CHANNELS, program_id)
        channels: Any = [] if row is None else row["channels"]
        for entry in channels if isinstance(channels, list) else ():
            if isinstance(entry, dict) and entry.get("type") == "web":
                origins = entry.get("allowedOrigins")
                if isinstance(origins, list):
                    return frozenset(o for o in origins if isinstance(o, str))
        return frozenset()
