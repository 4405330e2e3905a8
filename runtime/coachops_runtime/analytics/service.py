"""Daily usage and engagement."""

from __future__ import annotations

import uuid
from datetime import date

from coachops_runtime.analytics.repository import AnalyticsRepository
from coachops_runtime.analytics.schemas import ProgramDay
from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.kit.errors import BadRequest, NotFound
from coachops_runtime.programs.repository import ProgramRepository

MAX_DAYS = 366


async def daily(
    context: CreatorContext, start: date, stop: date, program_id: uuid.UUID | None
) -> list[ProgramDay]:
    if stop < start or (stop - start).days > MAX_DAYS:
        raise BadRequest(f"'to' must be on or after 'from', at most {MAX_DAYS} days later")
    if program_id is not None and not await ProgramRepository(context.session).exists(program_id):
        raise NotFound("no such program")
    rows = await AnalyticsRepository(context.session).daily(start, stop, program_id)
    return [
        ProgramDay(
            **row,
            check_in_response_rate=(
                row["check_ins_answered"] / row["check_ins_sent"] if row["check_ins_sent"] else None
            ),
        )
        for row in rows
    ]
