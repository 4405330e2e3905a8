"""Consent: record a change (the only way consent changes) and read the history.

Every writer of consent calls ``record_change``: the STOP/START keywords of the channels,
the e-mail channel's one-click unsubscribe, the creator's
``PUT /v1/end-users/{id}/consents/{channel}`` and the end user's
``PUT /v1/me/consents/{channel}``. The export of a person reads
``ConsentRepository.history_by_end_user`` directly.
"""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.consent.repository import ConsentRepository
from coachops_runtime.consent.schemas import ConsentEventPublic, ConsentSource
from coachops_runtime.kit.context import request_id_var
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.pagination import Page, decode_position, encode_position

ConsentHistoryPage = Page[ConsentEventPublic]


async def record_change(
    session: Session,
    creator_id: uuid.UUID,
    end_user_id: uuid.UUID,
    channel: str,
    *,
    granted: bool,
    address: str,
    source: ConsentSource,
    actor_id: uuid.UUID | None = None,
) -> Any:
    """Append the change and return the current consent it leaves (channel, granted,
    address, updated_at)."""
    repo = ConsentRepository(session)
    await repo.record(
        creator_id,
        end_user_id,
        channel,
        granted=granted,
        address=address,
        source=source,
        actor_id=actor_id,
        request_id=request_id_var.get(),
    )
    return await repo.current(end_user_id, channel)


async def history_page(
    session: Session, end_user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> ConsentHistoryPage:
    after = decode_position(cursor) if cursor else 0
    rows = await ConsentRepository(session).history_by_end_user(
        end_user_id, after=after, limit=limit + 1
    )
    items = [ConsentEventPublic(**row) for row in rows[:limit]]
    next_cursor = encode_position(rows[limit - 1]["event_id"]) if len(rows) > limit else None
    return ConsentHistoryPage(items=items, next_cursor=next_cursor)
