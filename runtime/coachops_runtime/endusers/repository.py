"""End-user queries (under the request's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session

_COLUMNS = (
    "end_user_id, email, external_id, display_name, time_zone, locale, status,"
    " created_at, updated_at"
)
# The columns a profile update may set: the SET clause is built from these names only.
UPDATABLE = ("email", "external_id", "display_name", "time_zone", "locale")
_INSERT = (
    "INSERT INTO end_users (creator_id, email, external_id, display_name, time_zone, locale)"
    f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}"
)
_GET = f"SELECT {_COLUMNS} FROM end_users WHERE end_user_id = $1"
_COUNT = "SELECT count(*) FROM end_users"
_ENROLMENTS = (
    "SELECT program_id, status, enrolled_at FROM enrolments WHERE end_user_id = $1"
    " ORDER BY enrolled_at, program_id"
)
_CONSENTS = (
    "SELECT channel, granted, address, updated_at FROM consents"
    " WHERE end_user_id = $1 ORDER BY channel"
)
_ENROL = (
    "INSERT INTO enrolments (creator_id, end_user_id, program_id) VALUES ($1, $2, $3)"
    " ON CONFLICT (end_user_id, program_id) DO UPDATE SET status = 'active'"
    " RETURNING program_id, status, enrolled_at"
)
_UNENROL = "DELETE FROM enrolments WHERE end_user_id = $1 AND program_id = $2 RETURNING program_id"
_QUEUE_EMAIL = (
    "INSERT INTO email_outbox (creator_id, to_address, template, payload)"
    " VALUES ($1, $2, $3, CAST($4 AS jsonb))"
)
_PAGE_COLUMNS = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))


class EndUserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def count(self) -> int:
        return int(await self.session.scalar(_COUNT))

    async def insert(self, creator_id: uuid.UUID, values: dict[str, Any]) -> Any:
        return await self.session.one_or_none(
            _INSERT,
            creator_id,
            values["email"],
            values["external_id"],
            values["display_name"],
            values["time_zone"],
            values["locale"],
        )

    async def get(self, end_user_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_GET, end_user_id)

    async def update(self, end_user_id: uuid.UUID, values: dict[str, Any]) -> Any | None:
        """Set the given columns (names from ``UPDATABLE`` only; values are parameters)."""
        columns = [column for column in UPDATABLE if column in values]
        assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(columns, 2))
        statement = (
            f"UPDATE end_users SET {assignments}, updated_at = now()"
            f" WHERE end_user_id = $1 RETURNING {_COLUMNS}"
        )
        return await self.session.one_or_none(
            statement, end_user_id, *(values[column] for column in columns)
        )

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        search: str | None,
        program_id: uuid.UUID | None,
    ) -> list[Any]:
        where: list[str] = []
        args: list[Any] = [limit]  # $1
        if after is not None:
            args += after
            where.append(f"(u.created_at, u.end_user_id) > (${len(args) - 1}, ${len(args)})")
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%{escaped}%")
            n = len(args)
            where.append(
                f"(u.email ILIKE ${n} OR u.display_name ILIKE ${n} OR u.external_id ILIKE ${n})"
            )
        if program_id is not None:
            args.append(program_id)
            where.append(
                "EXISTS (SELECT 1 FROM enrolments n WHERE n.end_user_id = u.end_user_id"
                f" AND n.program_id = ${len(args)})"
            )
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        statement = (
            f"SELECT {_PAGE_COLUMNS} FROM end_users u {clause}"
            " ORDER BY u.created_at, u.end_user_id LIMIT $1"
        )
        return await self.session.all(statement, *args)

    async def enrolments(self, end_user_id: uuid.UUID) -> list[Any]:
        return await self.session.all(_ENROLMENTS, end_user_id)

    async def consents(self, end_user_id: uuid.UUID) -> list[Any]:
        return await self.session.all(_CONSENTS, end_user_id)

    async def enrol(
        self, creator_id: uuid.UUID, end_user_id: uuid.UUID, program_id: uuid.UUID
    ) -> Any:
        return await self.session.one_or_none(_ENROL, creator_id, end_user_id, program_id)

    async def unenrol(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> bool:
        return await self.session.one_or_none(_UNENROL, end_user_id, program_id) is not None

    async def queue_email(
        self, creator_id: uuid.UUID, to_address: str, template: str, payload: str
    ) -> None:
        await self.session.execute(_QUEUE_EMAIL, creator_id, to_address, template, payload)
