"""End-user queries (under the request's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from coachops_runtime.kit.db import Session

_COLUMNS = (
    "end_user_id, email, external_id, display_name, time_zone, locale, status,"
    " created_at, updated_at"
)
_INSERT = text(
    "INSERT INTO end_users (creator_id, email, external_id, display_name, time_zone, locale)"
    " VALUES (:creator_id, :email, :external_id, :display_name, :time_zone, :locale)"
    f" RETURNING {_COLUMNS}"
)
_GET = text(f"SELECT {_COLUMNS} FROM end_users WHERE end_user_id = :end_user_id")
_COUNT = text("SELECT count(*) FROM end_users")
_ENROLMENTS = text(
    "SELECT program_id, status, enrolled_at FROM enrolments WHERE end_user_id = :end_user_id"
    " ORDER BY enrolled_at, program_id"
)
_CONSENTS = text(
    "SELECT channel, granted, address, updated_at FROM consents"
    " WHERE end_user_id = :end_user_id ORDER BY channel"
)
_ENROL = text(
    "INSERT INTO enrolments (creator_id, end_user_id, program_id)"
    " VALUES (:creator_id, :end_user_id, :program_id)"
    " ON CONFLICT (end_user_id, program_id) DO UPDATE SET status = 'active'"
    " RETURNING program_id, status, enrolled_at"
)
_UNENROL = text(
    "DELETE FROM enrolments WHERE end_user_id = :end_user_id AND program_id = :program_id"
    " RETURNING program_id"
)
_CONSENT = text(
    "INSERT INTO consents (creator_id, end_user_id, channel, granted, address)"
    " VALUES (:creator_id, :end_user_id, :channel, :granted, :address)"
    " ON CONFLICT (end_user_id, channel) DO UPDATE SET granted = EXCLUDED.granted,"
    " address = EXCLUDED.address, updated_at = now()"
    " RETURNING channel, granted, address, updated_at"
)
_QUEUE_EMAIL = text(
    "INSERT INTO email_outbox (creator_id, to_address, template, payload)"
    " VALUES (:creator_id, :to_address, :template, CAST(:payload AS jsonb))"
)


class EndUserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def count(self) -> int:
        return int(await self.session.scalar(_COUNT))

    async def insert(self, creator_id: uuid.UUID, values: dict[str, Any]) -> Any:
        return await self.session.one_or_none(_INSERT, {"creator_id": creator_id, **values})

    async def get(self, end_user_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_GET, {"end_user_id": end_user_id})

    async def update(self, end_user_id: uuid.UUID, values: dict[str, Any]) -> Any | None:
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        statement = text(
            f"UPDATE end_users SET {assignments}, updated_at = now()"
            f" WHERE end_user_id = :end_user_id RETURNING {_COLUMNS}"
        )
        return await self.session.one_or_none(statement, {"end_user_id": end_user_id, **values})

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        search: str | None,
        program_id: uuid.UUID | None,
    ) -> list[Any]:
        where = []
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            where.append("(u.created_at, u.end_user_id) > (:after_at, :after_id)")
            params["after_at"], params["after_id"] = after
        if search:
            where.append(
                "(u.email ILIKE :pattern OR u.display_name ILIKE :pattern"
                " OR u.external_id ILIKE :pattern)"
            )
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["pattern"] = f"%{escaped}%"
        if program_id is not None:
            where.append(
                "EXISTS (SELECT 1 FROM enrolments n WHERE n.end_user_id = u.end_user_id"
                " AND n.program_id = :program_id)"
            )
            params["program_id"] = program_id
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        columns = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))
        statement = text(
            f"SELECT {columns} FROM end_users u {clause}"
            " ORDER BY u.created_at, u.end_user_id LIMIT :limit"
        )
        return await self.session.all(statement, params)

    async def enrolments(self, end_user_id: uuid.UUID) -> list[Any]:
        return await self.session.all(_ENROLMENTS, {"end_user_id": end_user_id})

    async def consents(self, end_user_id: uuid.UUID) -> list[Any]:
        return await self.session.all(_CONSENTS, {"end_user_id": end_user_id})

    async def enrol(
        self, creator_id: uuid.UUID, end_user_id: uuid.UUID, program_id: uuid.UUID
    ) -> Any:
        return await self.session.one_or_none(
            _ENROL,
            {"creator_id": creator_id, "end_user_id": end_user_id, "program_id": program_id},
        )

    async def unenrol(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> bool:
        row = await self.session.one_or_none(
            _UNENROL, {"end_user_id": end_user_id, "program_id": program_id}
        )
        return row is not None

    async def set_consent(
        self,
        creator_id: uuid.UUID,
        end_user_id: uuid.UUID,
        channel: str,
        granted: bool,
        address: str,
    ) -> Any:
        return await self.session.one_or_none(
            _CONSENT,
            {
                "creator_id": creator_id,
                "end_user_id": end_user_id,
                "channel": channel,
                "granted": granted,
                "address": address,
            },
        )

    async def queue_email(
        self, creator_id: uuid.UUID, to_address: str, template: str, payload: str
    ) -> None:
        await self.session.execute(
            _QUEUE_EMAIL,
            {
                "creator_id": creator_id,
                "to_address": to_address,
                "template": template,
                "payload": payload,
            },
        )
