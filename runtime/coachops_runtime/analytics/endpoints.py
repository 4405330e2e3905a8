"""Usage and analytics per program per day."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from coachops_runtime.analytics import service
from coachops_runtime.analytics.schemas import ProgramDay
from coachops_runtime.auth.dependencies import AnalyticsRead
from coachops_runtime.kit.errors import problems

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


def _default_from() -> date:
    return (datetime.now(UTC) - timedelta(days=29)).date()


def _default_to() -> date:
    return datetime.now(UTC).date()


@router.get("/daily", response_model=list[ProgramDay], responses=problems(400, 401, 403, 404, 429))
async def daily(
    context: AnalyticsRead,
    program_id: uuid.UUID | None = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> list[ProgramDay]:
    """Messages in/out, active users and check-in response rate per program per UTC day
    (default: the last 30 days)."""
    return await service.daily(context, from_ or _default_from(), to or _default_to(), program_id)
