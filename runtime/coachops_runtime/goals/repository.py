"""Goal queries (under the request's or the reply job's tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.goals.schemas import GoalPublic
from coachops_runtime.kit.db import Session

_COLUMNS = (
    "goal_id, end_user_id, program_id, title, details, target_date, status, created_by,"
    " created_at, updated_at, closed_at"
)
# The columns an update may set: the SET clause is built from these names only.
UPDATABLE = ("title", "details", "target_date")
_INSERT = (
    "INSERT INTO goals (creator_id, end_user_id, program_id, title, details, target_date,"
    f" created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}"
)
_GET = f"SELECT {_COLUMNS} FROM goals WHERE goal_id = $1 AND end_user_id = $2"
_CLOSE = (
    "UPDATE goals SET status = $3, closed_at = now(), updated_at = now()"
    f" WHERE goal_id = $1 AND end_user_id = $2 AND status = 'active' RETURNING {_COLUMNS}"
)
_COUNT_ACTIVE = (
    "SELECT count(*) FROM goals WHERE end_user_id = $1 AND program_id = $2 AND status = 'active'"
)
_ACTIVE = (
    f"SELECT {_COLUMNS} FROM goals"
    " WHERE end_user_id = $1 AND program_id = $2 AND status = 'active'"
    " ORDER BY target_date NULLS LAST, created_at, goal_id LIMIT $3"
)
_ENROLLED = (
    "SELECT 1 FROM enrolments n JOIN programs p ON p.program_id = n.program_id"
    " WHERE n.end_user_id = $1 AND n.program_id = $2 AND p.deleted_at IS NULL"
)


async def active_goals(
    session: Session, end_user_id: uuid.UUID, program_id: uuid.UUID, *, limit: int = 20
) -> list[GoalPublic]:
    """The end user's active goals in a program, soonest target date first (goals without
    one last), for the AI coach's prompt. ``session`` must be bound to the tenant."""
    rows = await session.all(_ACTIVE, end_user_id, program_id, limit)
    return [GoalPublic(**row) for row in rows]


class GoalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def enrolled(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> bool:
        return await self.session.one_or_none(_ENROLLED, end_user_id, program_id) is not None

    async def count_active(self, end_user_id: uuid.UUID, program_id: uuid.UUID) -> int:
        return int(await self.session.scalar(_COUNT_ACTIVE, end_user_id, program_id))

    async def insert(
        self,
        creator_id: uuid.UUID,
        end_user_id: uuid.UUID,
        program_id: uuid.UUID,
        values: dict[str, Any],
        created_by: str,
    ) -> Any:
        return await self.session.one_or_none(
            _INSERT,
            creator_id,
            end_user_id,
            program_id,
            values["title"],
            values["details"],
            values["target_date"],
            created_by,
        )

    async def get(self, goal_id: uuid.UUID, end_user_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_GET, goal_id, end_user_id)

    async def update(
        self, goal_id: uuid.UUID, end_user_id: uuid.UUID, values: dict[str, Any]
    ) -> Any | None:
        """Set the given columns (names from ``UPDATABLE`` only; values are parameters)."""
        columns = [column for column in UPDATABLE if column in values]
        assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(columns, 3))
        statement = (
            f"UPDATE goals SET {assignments}, updated_at = now()"
            f" WHERE goal_id = $1 AND end_user_id = $2 AND status = 'active'"
            f" RETURNING {_COLUMNS}"
        )
        return await self.session.one_or_none(
            statement, goal_id, end_user_id, *(values[column] for column in columns)
        )

    async def close(self, goal_id: uuid.UUID, end_user_id: uuid.UUID, status: str) -> Any | None:
        return await self.session.one_or_none(_CLOSE, goal_id, end_user_id, status)

    async def page(
        self,
        *,
        end_user_id: uuid.UUID,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        program_id: uuid.UUID | None,
        status: str | None,
    ) -> list[Any]:
        """Oldest first."""
        args: list[Any] = [limit, end_user_id]
        where = ["end_user_id = $2"]
        if after is not None:
            args += after
            where.append(f"(created_at, goal_id) > (${len(args) - 1}, ${len(args)})")
        if program_id is not None:
            args.append(program_id)
            where.append(f"program_id = ${len(args)}")
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        return await self.session.all(
            f"SELECT {_COLUMNS} FROM goals WHERE {' AND '.join(where)}"
            " ORDER BY created_at, goal_id LIMIT $1",
            *args,
        )
