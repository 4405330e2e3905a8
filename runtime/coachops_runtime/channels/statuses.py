"""Delivery statuses the providers report (``channel_statuses``, migration 0013).

A status is recorded under the webhook's program and channel by the provider's message
id, whether or not the delivery that sent it has committed that id yet; it only moves
forward (sent, delivered, read; failed above all), so a late or repeated callback cannot
undo a later one. The deliveries API joins it back (``DELIVERY_STATUS``).
"""

from __future__ import annotations

import uuid

from coachops_runtime.channels.adapter import STATUS_RANK, StatusUpdate
from coachops_runtime.kit.db import Session

_RECORD = """
INSERT INTO channel_statuses (program_id, channel, provider_id, creator_id, status, rank, error)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (program_id, channel, provider_id) DO UPDATE SET
    status = EXCLUDED.status, rank = EXCLUDED.rank, error = EXCLUDED.error,
    reported_at = now()
WHERE channel_statuses.rank < EXCLUDED.rank
"""

# A delivery's status, over the ids of its parts: failed if one failed, else the least
# advanced one reported. Used as a LATERAL join on channel_outbox o.
DELIVERY_STATUS = """
LEFT JOIN LATERAL (
    SELECT s.status AS provider_status, s.reported_at AS provider_status_at,
           s.error AS provider_error
    FROM channel_statuses s
    WHERE s.program_id = o.program_id AND s.channel = o.channel
      AND s.provider_id = ANY (o.provider_ids)
    ORDER BY s.status = 'failed' DESC, s.rank
    LIMIT 1
) s ON true
"""


async def record(
    session: Session,
    creator_id: uuid.UUID,
    program_id: uuid.UUID,
    channel: str,
    update: StatusUpdate,
) -> None:
    await session.execute(
        _RECORD,
        program_id,
        channel,
        update.provider_id[:200],
        creator_id,
        update.status,
        STATUS_RANK[update.status],
        (update.error or None) and update.error[:300],
    )
