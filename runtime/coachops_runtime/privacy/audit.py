"""Seams to the audit log and the consent history (migration 0011, ``coachops_runtime.audit``).

Exports and erasures are creator and end-user actions the audit log records. The audit
log is being built next to this package; until its record function lands, ``record``
records nothing and returns. Targets are the export's or the erasure's id, never the
person's, so the append-only audit log keeps no trace of an erased person.
"""

from __future__ import annotations

import uuid

from coachops_runtime.kit.db import Session


async def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_id: uuid.UUID,
) -> None:
    """Record ``action`` on ``target_id`` by ``actor`` in the audit log (not built yet)."""
    del session, actor, action, target_id
