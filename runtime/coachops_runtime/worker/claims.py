"""The claim half of a cross-tenant queue poller: claim due items through a SECURITY
DEFINER function (which sees every tenant's ids and nothing else), then work on them
tenant by tenant, each under its own row-level security context. The transaction that
claims holds the claim until it ends, so a poller that dies releases it at once."""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.kit.db import Session


async def claim_by_tenant(session: Session, sql: str, *args: Any) -> dict[uuid.UUID, list[Any]]:
    """Run ``sql`` (rows of ``creator_id`` and an item id) and group the ids by tenant, in
    the order claimed."""
    claimed: dict[uuid.UUID, list[Any]] = {}
    for row in await session.all(sql, *args):
        claimed.setdefault(row[0], []).append(row[1])
    return claimed
