"""Audit log queries (under the caller's tenant; the runtime may only insert and read)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session

_COLUMNS = (
    "audit_id, actor_kind, actor_id, action, target_kind, target_id, details, request_id,"
    " created_at"
)
_INSERT = (
    "INSERT INTO audit_log (creator_id, actor_kind, actor_id, action, target_kind, target_id,"
    " details, request_id) VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS jsonb), $8)"
    f" RETURNING {_COLUMNS}"
)


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def insert(
        self,
        creator_id: uuid.UUID,
        *,
        actor_kind: str,
        actor_id: uuid.UUID | None,
        action: str,
        target_kind: str,
        target_id: str,
        details: dict[str, Any],
        request_id: str,
    ) -> Any:
        return await self.session.one_or_none(
            _INSERT,
            creator_id,
            actor_kind,
            actor_id,
            action,
            target_kind,
            target_id,
            json.dumps(details, sort_keys=True),
            request_id,
        )

    async def page(
        self,
        *,
        limit: int,
        before: int | None,
        action: str | None,
        actor_id: uuid.UUID | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[Any]:
        """Newest first; every filter is a parameter, the clause names fixed columns."""
        where: list[str] = []
        args: list[Any] = [limit]  # $1
        for clause, value in (
            ("audit_id < ${}", before),
            ("action = ${}", action),
            ("actor_id = ${}", actor_id),
            ("created_at >= ${}", since),
            ("created_at < ${}", until),
        ):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        condition = f"WHERE {' AND '.join(where)}" if where else ""
        return await self.session.all(
            f"SELECT {_COLUMNS} FROM audit_log {condition} ORDER BY audit_id DESC LIMIT $1", *args
        )
