"""Goals: create, update, close and page, for an end user (own goals in the token's
program) or for the creator (any of their end users' goals)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

from coachops_runtime.goals.repository import GoalRepository
from coachops_runtime.goals.schemas import GoalClose, GoalCreate, GoalPublic, GoalUpdate
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import Conflict, NotFound
from coachops_runtime.kit.pagination import Page, decode_keyset, encode_keyset

MAX_ACTIVE = 50  # active goals per end user and program


@dataclass(frozen=True)
class Owner:
    """Whose goals: the end user, their tenant, and who is acting."""

    session: Session
    creator_id: uuid.UUID
    end_user_id: uuid.UUID
    actor: str  # 'end_user' or 'creator'


async def create(owner: Owner, program_id: uuid.UUID, data: GoalCreate) -> GoalPublic:
    repo = GoalRepository(owner.session)
    if not await repo.enrolled(owner.end_user_id, program_id):
        raise NotFound("no such end user in that program")
    if await repo.count_active(owner.end_user_id, program_id) >= MAX_ACTIVE:
        raise Conflict(f"at most {MAX_ACTIVE} goals can be active at once; close one first")
    values = data.model_dump(include={"title", "details", "target_date"})
    row = await repo.insert(owner.creator_id, owner.end_user_id, program_id, values, owner.actor)
    return GoalPublic(**row)


async def _closed_or_missing(repo: GoalRepository, owner: Owner, goal_id: uuid.UUID) -> NoReturn:
    if await repo.get(goal_id, owner.end_user_id) is None:
        raise NotFound("no such goal")
    raise Conflict("the goal is closed; closed goals cannot change")


async def _own(owner: Owner, goal_id: uuid.UUID, program_id: uuid.UUID | None) -> GoalRepository:
    """The repository, once the goal is known to belong to the owner (and the program)."""
    repo = GoalRepository(owner.session)
    row = await repo.get(goal_id, owner.end_user_id)
    if row is None or (program_id is not None and row["program_id"] != program_id):
        raise NotFound("no such goal")
    return repo


async def update(
    owner: Owner, goal_id: uuid.UUID, data: GoalUpdate, program_id: uuid.UUID | None = None
) -> GoalPublic:
    repo = await _own(owner, goal_id, program_id)
    values = data.model_dump(exclude_unset=True)
    row: Any | None
    if values:
        row = await repo.update(goal_id, owner.end_user_id, values)
    else:
        row = await repo.get(goal_id, owner.end_user_id)
        row = row if row is not None and row["status"] == "active" else None
    if row is None:
        await _closed_or_missing(repo, owner, goal_id)
    return GoalPublic(**row)


async def close(
    owner: Owner, goal_id: uuid.UUID, data: GoalClose, program_id: uuid.UUID | None = None
) -> GoalPublic:
    repo = await _own(owner, goal_id, program_id)
    row = await repo.close(goal_id, owner.end_user_id, data.status)
    if row is None:
        await _closed_or_missing(repo, owner, goal_id)
    return GoalPublic(**row)


async def page(
    owner: Owner,
    *,
    limit: int,
    cursor: str | None,
    program_id: uuid.UUID | None,
    status: str | None,
) -> Page[GoalPublic]:
    after = decode_keyset(cursor) if cursor else None
    rows = await GoalRepository(owner.session).page(
        end_user_id=owner.end_user_id,
        limit=limit + 1,
        after=after,
        program_id=program_id,
        status=status,
    )
    items = [GoalPublic(**row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_keyset(last["created_at"], last["goal_id"])
    return Page[GoalPublic](items=items, next_cursor=next_cursor)
