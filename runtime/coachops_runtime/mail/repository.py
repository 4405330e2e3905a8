"""Outbox queries of the worker. Each delivery is one transaction on one connection:
claim a due e-mail across tenants, then name its tenant and work on the row under RLS."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from coachops_runtime.kit.db import bind_tenant

# SECURITY DEFINER (migration 0004): the earliest due (creator_id, email_id), locked with
# FOR UPDATE SKIP LOCKED until this transaction ends, so no two workers get one e-mail.
_CLAIM = "SELECT creator_id, email_id FROM claim_due_email()"
_LOCK = (
    "SELECT email_id, to_address, template, payload, attempts FROM email_outbox"
    " WHERE email_id = $1 AND sent_at IS NULL AND dead_at IS NULL FOR UPDATE"
)
_SENT = (
    "UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL"
    " WHERE email_id = $1"
)
_RETRY = (
    "UPDATE email_outbox SET attempts = attempts + 1, last_error = $2,"
    " next_attempt_at = now() + make_interval(secs => $3) WHERE email_id = $1"
)
_DEAD = (
    "UPDATE email_outbox SET attempts = attempts + 1, last_error = $2, dead_at = now()"
    " WHERE email_id = $1"
)


class OutboxRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def claim(self) -> tuple[uuid.UUID, uuid.UUID] | None:
        row = await self.connection.fetchrow(_CLAIM)
        return None if row is None else (row["creator_id"], row["email_id"])

    async def bind_tenant(self, creator_id: uuid.UUID) -> None:
        await bind_tenant(self.connection, creator_id)

    async def lock(self, email_id: uuid.UUID) -> Any | None:
        return await self.connection.fetchrow(_LOCK, email_id)

    async def mark_sent(self, email_id: uuid.UUID) -> None:
        await self.connection.execute(_SENT, email_id)

    async def retry_later(self, email_id: uuid.UUID, error: str, delay_seconds: float) -> None:
        await self.connection.execute(_RETRY, email_id, error, delay_seconds)

    async def give_up(self, email_id: uuid.UUID, error: str) -> None:
        await self.connection.execute(_DEAD, email_id, error)
