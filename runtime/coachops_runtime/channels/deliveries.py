"""Outbox queries of the worker. Each delivery is one transaction on one connection: claim
a due delivery across tenants, then name its tenant and work on the row under RLS, so the
credentials joined to it can only be its own tenant's."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from coachops_runtime.kit.db import bind_tenant

# SECURITY DEFINER (migration 0009): the earliest due delivery whose conversation has no
# earlier pending one, locked (SKIP LOCKED) until this transaction ends.
_CLAIM = "SELECT creator_id, delivery_id FROM claim_channel_delivery()"
_LOCK = """
SELECT o.delivery_id, o.program_id, o.channel, o.body, o.purpose, o.attempts, o.parts_sent,
       o.provider_ids, o.end_user_id, i.address, i.last_inbound_at, c.ciphertext, k.granted,
       p.spec, coalesce(p.title, p.name) AS program_title, t.subject AS thread_subject,
       t.last_message_id AS thread_last, t.refs AS thread_refs
FROM channel_outbox o
JOIN programs p ON p.program_id = o.program_id
LEFT JOIN email_threads t ON t.conversation_id = o.conversation_id
LEFT JOIN channel_identities i
  ON i.program_id = o.program_id AND i.channel = o.channel AND i.end_user_id = o.end_user_id
LEFT JOIN channel_credentials c ON c.program_id = o.program_id AND c.channel = o.channel
LEFT JOIN consents k ON k.end_user_id = o.end_user_id AND k.channel = o.channel
WHERE o.delivery_id = $1 AND o.state = 'pending'
FOR UPDATE OF o
"""
_SENT = """
UPDATE channel_outbox SET state = 'sent', attempts = attempts + 1, parts_sent = $2,
    provider_ids = $3, last_error = NULL, finished_at = now()
WHERE delivery_id = $1
"""
_RETRY = """
UPDATE channel_outbox SET attempts = attempts + 1, parts_sent = $2, provider_ids = $3,
    last_error = $4, next_attempt_at = now() + make_interval(secs => $5)
WHERE delivery_id = $1
"""
_DEAD = """
UPDATE channel_outbox SET state = 'dead', attempts = attempts + 1, parts_sent = $2,
    provider_ids = $3, last_error = $4, finished_at = now()
WHERE delivery_id = $1
"""
_SUPPRESS = """
UPDATE channel_outbox SET state = 'suppressed', last_error = $2, finished_at = now()
WHERE delivery_id = $1
"""


class DeliveryRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def claim(self) -> tuple[uuid.UUID, int] | None:
        row = await self.connection.fetchrow(_CLAIM)
        return None if row is None else (row["creator_id"], row["delivery_id"])

    async def bind_tenant(self, creator_id: uuid.UUID) -> None:
        await bind_tenant(self.connection, creator_id)

    async def lock(self, delivery_id: int) -> Any | None:
        return await self.connection.fetchrow(_LOCK, delivery_id)

    async def sent(self, delivery_id: int, parts: int, ids: list[str]) -> None:
        await self.connection.execute(_SENT, delivery_id, parts, ids)

    async def retry_later(
        self, delivery_id: int, parts: int, ids: list[str], error: str, delay: float
    ) -> None:
        await self.connection.execute(_RETRY, delivery_id, parts, ids, error, delay)

    async def dead(self, delivery_id: int, parts: int, ids: list[str], error: str) -> None:
        await self.connection.execute(_DEAD, delivery_id, parts, ids, error)

    async def suppress(self, delivery_id: int, reason: str) -> None:
        await self.connection.execute(_SUPPRESS, delivery_id, reason)
