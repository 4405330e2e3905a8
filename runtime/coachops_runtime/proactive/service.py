"""The creator API's operations on proactive schedules, on the engine's clock."""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.kit.errors import Conflict, NotFound
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.repository import CreatorQueries, ProactiveRepository
from coachops_runtime.proactive.schemas import DecisionOut, ScheduleOut
from coachops_runtime.proactive.state import Proactive
from coachops_runtime.proactive.timing import zone_of


def _schedule(row: Any) -> ScheduleOut:
    occurrence = row["occurrence"]
    local = None
    if occurrence is not None:
        local = occurrence.astimezone(zone_of(row["time_zone"])).isoformat()
    return ScheduleOut(
        schedule_id=row["schedule_id"],
        program_id=row["program_id"],
        end_user_id=row["end_user_id"],
        kind=row["kind"],
        item=row["item"],
        occurrence=occurrence,
        local_time=local,
        due_at=row["due_at"] if occurrence is not None else None,
        deferred=row["deferred"],
        send_now=row["send_now"],
    )


async def upcoming(
    context: CreatorContext,
    program_id: uuid.UUID | None,
    end_user_id: uuid.UUID | None,
    limit: int,
) -> list[ScheduleOut]:
    rows = await CreatorQueries(context.session).upcoming(program_id, end_user_id, limit)
    return [_schedule(row) for row in rows]


async def decisions(
    context: CreatorContext,
    program_id: uuid.UUID | None,
    end_user_id: uuid.UUID | None,
    outcome: str | None,
    limit: int,
) -> list[DecisionOut]:
    queries = CreatorQueries(context.session)
    rows = await queries.decisions(program_id, end_user_id, outcome, limit)
    return [DecisionOut(**row) for row in rows]


async def _locked(context: CreatorContext, schedule_id: int) -> tuple[ProactiveRepository, Any]:
    repo = ProactiveRepository(context.session, context.creator_id)
    rows = await repo.context([schedule_id], wait=True)
    if not rows:
        raise NotFound("no such proactive schedule")
    return repo, rows[0]


async def _one(context: CreatorContext, schedule_id: int) -> ScheduleOut:
    row = await CreatorQueries(context.session).one(schedule_id)
    if row is None:  # the skip removed it: a goal's last follow-up
        raise NotFound("the schedule has no occurrence left")
    return _schedule(row)


async def skip(context: CreatorContext, proactive: Proactive, schedule_id: int) -> ScheduleOut:
    """Skip the next occurrence (recorded as creator_skipped); the schedule moves on."""
    repo, row = await _locked(context, schedule_id)
    engine = Engine(proactive.settings, None)
    if not await engine.skip(repo, row, proactive.clock.now()):
        raise Conflict("this schedule has no next occurrence to skip")
    await repo.flush()
    return await _one(context, schedule_id)


async def send_now(context: CreatorContext, proactive: Proactive, schedule_id: int) -> ScheduleOut:
    """Mark the next occurrence to be sent at once; the scheduler sends it within a poll,
    past quiet hours and maxPerDay (not past consent, pauses or a suspended tenant)."""
    repo, row = await _locked(context, schedule_id)
    engine = Engine(proactive.settings, None)
    now = proactive.clock.now()
    if await engine.upcoming(repo, row, now) is None:
        raise Conflict("this schedule has nothing left to send")
    await repo.flush()  # the occurrence planned, then marked (its due time is now)
    await repo.send_now(schedule_id, now)
    return await _one(context, schedule_id)
