"""Record and list what creators and API keys changed.

``record`` is the one call other modules make, inside the request's transaction, so the
entry commits or rolls back with the change it describes. ``record_system`` is for work
the platform does on a tenant's behalf (the retention purge, jobs a worker finishes).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from coachops_runtime.audit.repository import AuditRepository
from coachops_runtime.audit.schemas import AuditEntryPublic
from coachops_runtime.kit.context import request_id_var
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import BadRequest
from coachops_runtime.kit.pagination import Page, decode_position, encode_position

if TYPE_CHECKING:  # auth imports this module to audit API keys
    from coachops_runtime.auth.dependencies import CreatorContext

AuditPage = Page[AuditEntryPublic]


async def record(
    context: CreatorContext,
    action: str,
    target_kind: str,
    target_id: object = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry for the caller (account or API key) of ``context``'s request.

    ``target_id`` and ``details`` must hold ids and settings only, never personal data.
    """
    actor_kind, actor_id = (
        ("api_key", context.api_key_id)
        if context.api_key_id is not None
        else ("account", context.account_id)
    )
    await AuditRepository(context.session).insert(
        context.creator_id,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action=action,
        target_kind=target_kind,
        target_id=str(target_id),
        details=details or {},
        request_id=request_id_var.get(),
    )


async def record_system(
    session: Session,
    creator_id: uuid.UUID,
    action: str,
    target_kind: str,
    target_id: object = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry for work the platform did in ``creator_id``'s tenant (bound)."""
    await AuditRepository(session).insert(
        creator_id,
        actor_kind="system",
        actor_id=None,
        action=action,
        target_kind=target_kind,
        target_id=str(target_id),
        details=details or {},
        request_id=request_id_var.get(),
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise BadRequest("'since' and 'until' need a time zone, e.g. 2026-01-01T00:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:  # year 1 with a positive offset has no UTC time
        raise BadRequest("'since' or 'until' is out of range") from error


async def page(
    session: Session,
    *,
    limit: int,
    cursor: str | None,
    action: str | None,
    actor_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> AuditPage:
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and until <= since:
        raise BadRequest("'until' must be later than 'since'")
    rows = await AuditRepository(session).page(
        limit=limit + 1,
        before=decode_position(cursor) if cursor else None,
        action=action,
        actor_id=actor_id,
        since=since,
        until=until,
    )
    items = [AuditEntryPublic(**row) for row in rows[:limit]]
    next_cursor = encode_position(rows[limit - 1]["audit_id"]) if len(rows) > limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
