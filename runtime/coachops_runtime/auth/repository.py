"""Auth queries. Every one runs under the tenant the transaction is bound to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from coachops_runtime.kit.db import Session

_TENANT_FOR_LOGIN = text("SELECT tenant_for_login(:email)")
_ACCOUNT_BY_EMAIL = text(
    "SELECT account_id, creator_id, email, password_hash, email_verified_at, token_version"
    " FROM creator_accounts WHERE lower(email) = lower(:email)"
)
_ACCOUNT = text(
    "SELECT account_id, creator_id, email, password_hash, email_verified_at, token_version"
    " FROM creator_accounts WHERE account_id = :account_id"
)
_ACCOUNT_COUNT = text("SELECT count(*) FROM creator_accounts")
_INSERT_ACCOUNT = text(
    "INSERT INTO creator_accounts (creator_id, email, password_hash)"
    " VALUES (:creator_id, :email, :password_hash) RETURNING account_id"
)
_VERIFY_ACCOUNT = text(
    "UPDATE creator_accounts SET email_verified_at = now(), updated_at = now()"
    " WHERE account_id = :account_id AND email_verified_at IS NULL"
)
_SET_PASSWORD = text(
    "UPDATE creator_accounts SET password_hash = :password_hash,"
    " token_version = token_version + 1, updated_at = now() WHERE account_id = :account_id"
)
_REHASH = text(
    "UPDATE creator_accounts SET password_hash = :password_hash WHERE account_id = :account_id"
)
_INSERT_ACTION_TOKEN = text(
    "INSERT INTO action_tokens"
    " (token_id, creator_id, account_id, end_user_id, program_id, purpose, token_hash,"
    "  expires_at)"
    " VALUES (:token_id, :creator_id, :account_id, :end_user_id, :program_id, :purpose,"
    "  :token_hash, now() + make_interval(secs => :seconds))"
)
_USE_ACTION_TOKEN = text(
    "UPDATE action_tokens SET used_at = now()"
    " WHERE token_id = :token_id AND purpose = :purpose AND used_at IS NULL"
    " AND expires_at > now() RETURNING token_hash, account_id, end_user_id, program_id"
)
_INSERT_EMAIL = text(
    "INSERT INTO email_outbox (creator_id, to_address, template, payload)"
    " VALUES (:creator_id, :to_address, :template, CAST(:payload AS jsonb))"
)
_INSERT_API_KEY = text(
    "INSERT INTO api_keys (api_key_id, creator_id, name, prefix, secret_hash, scopes,"
    " expires_at) VALUES (:api_key_id, :creator_id, :name, :prefix, :secret_hash, :scopes,"
    " :expires_at)"
    " RETURNING api_key_id, name, prefix, scopes, created_at, expires_at, last_used_at,"
    " revoked_at"
)
_API_KEYS = text(
    "SELECT api_key_id, name, prefix, scopes, created_at, expires_at, last_used_at,"
    " revoked_at FROM api_keys ORDER BY created_at, api_key_id"
)
_API_KEY_FOR_AUTH = text(
    "SELECT api_key_id, secret_hash, scopes FROM api_keys WHERE api_key_id = :api_key_id"
    " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
)
_TOUCH_API_KEY = text(
    "UPDATE api_keys SET last_used_at = now() WHERE api_key_id = :api_key_id"
    " AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
)
_REVOKE_API_KEY = text(
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
    " WHERE api_key_id = :api_key_id RETURNING api_key_id"
)
_ENROLMENT = text(
    "SELECT e.email FROM enrolments n JOIN end_users e USING (end_user_id)"
    " WHERE n.end_user_id = :end_user_id AND n.program_id = :program_id"
    " AND n.status = 'active'"
)


class AuthRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def tenant_for_login(self, email: str) -> uuid.UUID | None:
        value = await self.session.scalar(_TENANT_FOR_LOGIN, {"email": email})
        return value if isinstance(value, uuid.UUID) else None

    async def account_by_email(self, email: str) -> Any | None:
        return await self.session.one_or_none(_ACCOUNT_BY_EMAIL, {"email": email})

    async def account(self, account_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_ACCOUNT, {"account_id": account_id})

    async def account_count(self) -> int:
        return int(await self.session.scalar(_ACCOUNT_COUNT))

    async def create_account(
        self, creator_id: uuid.UUID, email: str, password_hash: str
    ) -> uuid.UUID:
        value = await self.session.scalar(
            _INSERT_ACCOUNT,
            {"creator_id": creator_id, "email": email, "password_hash": password_hash},
        )
        assert isinstance(value, uuid.UUID)
        return value

    async def mark_verified(self, account_id: uuid.UUID) -> None:
        await self.session.execute(_VERIFY_ACCOUNT, {"account_id": account_id})

    async def set_password(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            _SET_PASSWORD, {"account_id": account_id, "password_hash": password_hash}
        )

    async def rehash(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            _REHASH, {"account_id": account_id, "password_hash": password_hash}
        )

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
            {
                "token_id": token_id,
                "creator_id": creator_id,
                "account_id": account_id,
                "end_user_id": end_user_id,
                "program_id": program_id,
                "purpose": purpose,
                "token_hash": token_hash,
                "seconds": float(seconds),
            },
        )

    async def use_action_token(self, token_id: uuid.UUID, purpose: str) -> Any | None:
        return await self.session.one_or_none(
            _USE_ACTION_TOKEN, {"token_id": token_id, "purpose": purpose}
        )

    async def queue_email(
        self, creator_id: uuid.UUID, to_address: str, template: str, payload: str
    ) -> None:
        await self.session.execute(
            _INSERT_EMAIL,
            {
                "creator_id": creator_id,
                "to_address": to_address,
                "template": template,
                "payload": payload,
            },
        )

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
            _INSERT_API_KEY,
            {
                "api_key_id": api_key_id,
                "creator_id": creator_id,
                "name": name,
                "prefix": prefix,
                "secret_hash": secret_hash,
                "scopes": scopes,
                "expires_at": expires_at,
            },
        )

    async def api_keys(self) -> list[Any]:
        return await self.session.all(_API_KEYS)

    async def api_key_for_auth(self, api_key_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_API_KEY_FOR_AUTH, {"api_key_id": api_key_id})

    async def touch_api_key(self, api_key_id: uuid.UUID) -> None:
        await self.session.execute(_TOUCH_API_KEY, {"api_key_id": api_key_id})

    async def revoke_api_key(self, api_key_id: uuid.UUID) -> bool:
        row = await self.session.one_or_none(_REVOKE_API_KEY, {"api_key_id": api_key_id})
        return row is not None

    async def active_enrolment_email(
        self, end_user_id: uuid.UUID, program_id: uuid.UUID
    ) -> tuple[bool, str | None]:
        row = await self.session.one_or_none(
            _ENROLMENT, {"end_user_id": end_user_id, "program_id": program_id}
        )
        return (row is not None, row["email"] if row else None)
