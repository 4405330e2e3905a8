"""The creator's audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from coachops_runtime.audit import service
from coachops_runtime.audit.schemas import AuditEntryPublic
from coachops_runtime.auth.dependencies import AccountDep
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.pagination import CursorQuery, Page
from coachops_runtime.kit.text import Storable

router = APIRouter(prefix="/v1/audit-log", tags=["audit"])

Action = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[a-z_]+\.[a-z_]+$"), Storable
]


@router.get("", response_model=Page[AuditEntryPublic], responses=problems(400, 401, 403, 429))
async def list_audit_log(
    context: AccountDep,
    action: Annotated[Action | None, Query(examples=["program.update"])] = None,
    actor_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AuditEntryPublic]:
    """Changes made by your accounts and API keys, newest first (signed-in accounts only).
    Filter by action, by actor (account or API key id) and by time (``since`` inclusive,
    ``until`` exclusive)."""
    return await service.page(
        context.session,
        limit=limit,
        cursor=cursor,
        action=action,
        actor_id=actor_id,
        since=since,
        until=until,
    )
