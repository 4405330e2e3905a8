"""Safety events for the creator API."""

from __future__ import annotations

import uuid

from coachops_runtime.ai.safety.repository import SafetyRepository
from coachops_runtime.ai.safety.schemas import SafetyEventPublic
from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.kit.pagination import Page, decode_keyset, encode_keyset


async def page(
    context: CreatorContext,
    *,
    limit: int,
    cursor: str | None,
    filters: dict[str, uuid.UUID | None],
) -> Page[SafetyEventPublic]:
    before = decode_keyset(cursor) if cursor else None
    rows = await SafetyRepository(context.session).page(
        limit=limit + 1, before=before, filters=filters
    )
    items = [SafetyEventPublic(**row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_keyset(last["created_at"], last["event_id"])
    return Page[SafetyEventPublic](items=items, next_cursor=next_cursor)
