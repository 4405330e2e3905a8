"""Channel queries of the API side, under the request's tenant (RLS) once it is bound.

``hook_tenant`` is the one query before a tenant is bound: the SECURITY DEFINER directory
of webhook URLs (migration 0009) answers which tenant a (program, channel) belongs to.
"""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.channels import statuses
from coachops_runtime.kit.db import Session

_HOOK_TENANT = "SELECT channel_hook_tenant($1, $2)"
_CREDENTIALS = "SELECT ciphertext FROM channel_credentials WHERE program_id = $1 AND channel = $2"
_PROGRAM = "SELECT name, title, spec FROM programs WHERE program_id = $1 AND deleted_at IS NULL"
_CLAIM_INBOUND = (
    "INSERT INTO channel_inbound (creator_id, program_id, channel, provider_key)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true"
)
_SEEN = (
    "UPDATE channel_identities SET address = $4, last_inbound_at = now()"
    " WHERE program_id = $1 AND channel = $2 AND external_id = $3 RETURNING end_user_id"
)
_NEW_END_USER = (
    "INSERT INTO end_users (creator_id, display_name, locale, status)"
    " VALUES ($1, $2, $3, 'active') RETURNING end_user_id"
)
_DROP_END_USER = "DELETE FROM end_users WHERE end_user_id = $1"
_ENROL = (
    "INSERT INTO enrolments (creator_id, end_user_id, program_id) VALUES ($1, $2, $3)"
    " ON CONFLICT (end_user_id, program_id) DO NOTHING"
)
_NEW_IDENTITY = (
    "INSERT INTO channel_identities (creator_id, program_id, channel, external_id,"
    " end_user_id, address) VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT DO NOTHING RETURNING end_user_id"
)
_COMPLIANCE = (
    "INSERT INTO channel_outbox (creator_id, program_id, conversation_id, end_user_id,"
    " channel, body, purpose) VALUES ($1, $2, $3, $4, $5, $6, 'compliance')"
)
_DELIVERY_COLUMNS = (
    "delivery_id, program_id, conversation_id, message_id, channel, purpose, state, attempts,"
    " parts_sent, last_error, created_at, finished_at"
)
_RETRY_DEAD = (
    "UPDATE channel_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(),"
    " last_error = NULL, finished_at = NULL WHERE delivery_id = $1 AND state = 'dead'"
    f" RETURNING {_DELIVERY_COLUMNS}"
)
_DELIVERY = f"SELECT {_DELIVERY_COLUMNS} FROM channel_outbox WHERE delivery_id = $1"


class ChannelRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def hook_tenant(self, program_id: uuid.UUID, channel: str) -> uuid.UUID | None:
        value = await self.session.scalar(_HOOK_TENANT, program_id, channel)
        return value if isinstance(value, uuid.UUID) else None

    async def credentials(self, program_id: uuid.UUID, channel: str) -> bytes | None:
        value = await self.session.scalar(_CREDENTIALS, program_id, channel)
        return bytes(value) if value is not None else None

    async def program(self, program_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_PROGRAM, program_id)

    async def first_time(
        self, creator_id: uuid.UUID, program_id: uuid.UUID, channel: str, provider_key: str
    ) -> bool:
        """Record a provider message id; False when it was recorded before (a duplicate)."""
        return bool(
            await self.session.scalar(_CLAIM_INBOUND, creator_id, program_id, channel, provider_key)
        )

    async def known_sender(
        self, program_id: uuid.UUID, channel: str, external_id: str, address: str
    ) -> uuid.UUID | None:
        value = await self.session.scalar(_SEEN, program_id, channel, external_id, address)
        return value if isinstance(value, uuid.UUID) else None

    async def enrol_sender(
        self,
        creator_id: uuid.UUID,
        program_id: uuid.UUID,
        channel: str,
        external_id: str,
        address: str,
        display_name: str,
        locale: str,
    ) -> uuid.UUID:
        end_user = await self.session.scalar(_NEW_END_USER, creator_id, display_name, locale)
        mapped = await self.session.scalar(
            _NEW_IDENTITY, creator_id, program_id, channel, external_id, end_user, address
        )
        if mapped is None:
            # A concurrent first message of the same sender enrolled it first.
            await self.session.execute(_DROP_END_USER, end_user)
            found = await self.known_sender(program_id, channel, external_id, address)
            assert found is not None
            return found
        await self.session.execute(_ENROL, creator_id, end_user, program_id)
        return uuid.UUID(str(end_user))

    async def compliance_answer(
        self,
        creator_id: uuid.UUID,
        program_id: uuid.UUID,
        conversation_id: uuid.UUID,
        end_user_id: uuid.UUID,
        channel: str,
        body: str,
    ) -> None:
        await self.session.execute(
            _COMPLIANCE, creator_id, program_id, conversation_id, end_user_id, channel, body
        )

    async def deliveries(
        self, *, state: str, program_id: uuid.UUID | None, after: int, limit: int
    ) -> list[Any]:
        args: list[Any] = [state, after, limit]
        where = "o.state = $1 AND o.delivery_id > $2"
        if program_id is not None:
            args.append(program_id)
            where += " AND o.program_id = $4"
        columns = ", ".join(f"o.{name.strip()}" for name in _DELIVERY_COLUMNS.split(","))
        return await self.session.all(
            f"SELECT {columns}, s.* FROM channel_outbox o {statuses.DELIVERY_STATUS}"
            f" WHERE {where} ORDER BY o.delivery_id LIMIT $3",
            *args,
        )

    async def delivery(self, delivery_id: int) -> Any | None:
        return await self.session.one_or_none(_DELIVERY, delivery_id)

    async def retry_dead(self, delivery_id: int) -> Any | None:
        return await self.session.one_or_none(_RETRY_DEAD, delivery_id)
