"""Auth queries. Every one runs under the tenant the transaction is bound to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session

_TENANT_FOR_LOGIN = "SELECT tenant_for_login($1)"
_ACCOUNT_COLUMNS = "account_id, creator_id, email, password_hash, email_verified_at, token_version"
_ACCOUNT_BY_EMAIL = (
    f"SELECT {_ACCOUNT_COLUMNS} FROM creator_accounts WHERE lower(email) = lower($1)"
)
_ACCOUNT = f"SELECT {_ACCOUNT_COLUMNS} FROM creator_accounts WHERE account_id = $1"
_INSERT_ACCOUNT = (
    "INSERT INTO creator_accounts (creator_id, email, password_hash)"
    " VALUES ($1, $2, $3) RETURNING account_id"
)
_VERIFY_ACCOUNT = (
    "UPDATE creator_accounts SET email_verified_at = now(), updated_at = now()"
    " WHERE account_id = $1 AND email_verified_at IS NULL"
)
_SET_PASSWORD = (
    "UPDATE creator_accounts SET password_hash = $2,"
    " token_version = token_version + 1, updated_at = now() WHERE account_id = $1"
)
_REHASH = "UPDATE creator_accounts SET password_hash = $2 WHERE account_id = $1"
_INSERT_ACTION_TOKEN = (
    "INSERT INTO action_tokens"
    " (token_id, creator_id, account_id, end_user_id, program_id, purpose, token_hash,"
    "  expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))"
)
_USE_ACTION_TOKEN = (
    "UPDATE action_tokens SET used_at = now()"
    " WHERE token_id = $1 AND purpose = $2 AND used_at IS NULL"
    " AND expires_at > now() RETURNING token_hash, account_id, end_user_id, program_id"
)
_INSERT_EMAIL = (
    "INSERT INTO email_outbox (creator_id, to_address, template, payload)"
    " VALUES ($1, $2, $3, CAST($4 AS jsonb))"
)
_API_KEY_COLUMNS = (
    "api_key_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at"
)
_INSERT_API_KEY = (
    "INSERT INTO api_keys (api_key_id, creator_id, name, prefix, secret_hash, scopes,"
    f" expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_API_KEY_COLUMNS}"
)
_API_KEYS = f"SELECT {_API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, api_key_id"
_API_KEY_FOR_AUTH = (
    "SELECT api_key_id, secret_hash, scopes FROM api_keys WHERE api_key_id = $1"
    " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
)
_TOUCH_API_KEY = (
    "UPDATE api_keys SET last_used_at = now() WHERE api_key_id = $1"
    " AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
)
_REVOKE_API_KEY = (
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
    " WHERE api_key_id = $1 RETURNING api_key_id"
)
_ENROLMENT = (
    "SELECT e.email FROM enrolments n JOIN end_users e USING (end_user_id)"
    " WHERE n.end_user_id = $1 AND n.program_id = $2 AND n.status = 'active'"
)


class AuthRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def tenant_for_login(self, email: str) -> uuid.UUID | None:
        value = await self.session.scalar(_TENANT_FOR_LOGIN, email)
        return value if isinstance(value, uuid.UUID) else None

    async def account_by_email(self, email: str) -> Any | None:
        return await self.session.one_or_none(_ACCOUNT_BY_EMAIL, email)

    async def account(self, account_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_ACCOUNT, account_id)

    async def create_account(
        self, creator_id: uuid.UUID, email: str, password_hash: str
    ) -> uuid.UUID:
        value = await self.session.scalar(_INSERT_ACCOUNT, creator_id, email, password_hash)
        assert isinstance(value, uuid.UUID)
        return value

    async def mark_verified(self, account_id: uuid.UUID) -> None:
        await self.session.execute(_VERIFY_ACCOUNT, account_id)

    async def set_password(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(_SET_PASSWORD, account_id, password_hash)

    async def rehash(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(_REHASH, account_id, password_hash)

    async def add_action_token(
        self,
        *,
        token_id: uuid.UUID,
        creator_id: uuid.UUID,
        purpose: str,
        token_hash: bytes,
        seconds: int,
        account_id: uuid.UUID | None = None,
        end_user_id: uuid.UUID | None = None,
        program_id: uuid.UUID | None = None,
    ) -> None:
        await self.session.execute(
            _INSERT_ACTION_TOKEN,
            token_id,
            creator_id,
            account_id,
            end_user_id,
            program_id,
            purpose,
            token_hash,
            float(seconds),
        )

    async def use_action_token(self, token_id: uuid.UUID, purpose: str) -> Any | None:
        return await self.session.one_or_none(_USE_ACTION_TOKEN, token_id, purpose)

    async def queue_email(
        self, creator_id: uuid.UUID, to_address: str, template: str, payload: str
    ) -> None:
        await self.session.execute(_INSERT_EMAIL, creator_id, to_address, template, payload)

    async def create_api_key(
        self,
        *,
        api_key_id: uuid.UUID,
        creator_id: uuid.UUID,
        name: str,
        prefix: str,
        secret_hash: bytes,
        scopes: list[str],
        expires_at: datetime | None,
    ) -> Any:
        return await self.session.one_or_none(
            _INSERT_API_KEY, api_key_id, creator_id, name, prefix, secret_hash, scopes, expires_at
        )

    async def api_keys(self) -> list[Any]:
        return await self.session.all(_API_KEYS)

    async def api_key_for_auth(self, api_key_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_API_KEY_FOR_AUTH, api_key_id)

    async def touch_api_key(self, api_key_id: uuid.UUID) -> None:
        await self.session.execute(_TOUCH_API_KEY, api_key_id)

    async def revoke_api_key(self, api_key_id: uuid.UUID) -> bool:
        return await self.session.one_or_none(_REVOKE_API_KEY, api_key_id) is not None

    async def active_enrolment_email(
        self, end_user_id: uuid.UUID, program_id: uuid.UUID
    ) -> tuple[bool, str | None]:
        row = await self.session.one_or_none(_ENROLMENT, end_user_id, program_id)
        return (row is not None, row["email"] if row else None)
