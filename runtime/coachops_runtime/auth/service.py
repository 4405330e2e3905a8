"""Accounts, sessions, API keys and end-user tokens.

Sign-up claims a tenant the platform created (a ``Creator`` object, reconciled by the
operator into the ``creators`` row): the e-mail must be the Creator's contact e-mail and is
proven by a verification link, so knowing a Creator's name is not enough to take it over.
Answers that would reveal whether a creator or an account exists are uniform.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from coachops_runtime.auth import passwords
from coachops_runtime.auth.repository import AuthRepository
from coachops_runtime.auth.schemas import (
    Accepted,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    EndUserToken,
    TokenPair,
)
from coachops_runtime.container import Runtime
from coachops_runtime.creators.repository import CreatorRepository
from coachops_runtime.creators.service import load_tenant
from coachops_runtime.kit.db import IntegrityError, Session
from coachops_runtime.kit.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TenantSuspended,
    Unauthorized,
)

log = logging.getLogger("coachops.auth")

ACCESS_AUDIENCE = "coachops:creator"
REFRESH_AUDIENCE = "coachops:refresh"
END_USER_AUDIENCE = "coachops:end-user"
API_KEY_PREFIX = "cok_"

SIGNUP_ACCEPTED = Accepted(
    detail="If the creator and e-mail match, a verification link is on its way."
)
RESET_ACCEPTED = Accepted(detail="If an account uses that e-mail, a reset link is on its way.")
MAGIC_LINK_ACCEPTED = Accepted(detail="A sign-in link is on its way to the end user.")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _new_action_token(creator_id: uuid.UUID) -> tuple[uuid.UUID, str, bytes]:
    token_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    return token_id, f"{creator_id.hex}.{token_id.hex}.{secret}", _digest(secret)


def _parse_action_token(token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    try:
        creator_hex, token_hex, secret = token.split(".", 2)
        return uuid.UUID(hex=creator_hex), uuid.UUID(hex=token_hex), secret
    except ValueError as error:
        raise BadRequest("invalid or expired token") from error


async def _redeem(session: Session, token: str, purpose: str) -> tuple[uuid.UUID, Any]:
    creator_id, token_id, secret = _parse_action_token(token)
    await session.set_tenant(creator_id)
    row = await AuthRepository(session).use_action_token(token_id, purpose)
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), _digest(secret)):
        raise BadRequest("invalid or expired token")
    return creator_id, row


# ---------------------------------------------------------------- accounts


async def signup(
    runtime: Runtime, session: Session, creator: str, email: str, password: str
) -> Accepted:
    password_hash = await passwords.hash_password(password)  # always: uniform timing
    creator_id = await CreatorRepository(session).tenant_for_name(creator)
    if creator_id is None:
        return SIGNUP_ACCEPTED
    await session.set_tenant(creator_id)
    tenant = await load_tenant(runtime, session)
    repo = AuthRepository(session)
    if (
        tenant is None
        or tenant.contact_email.lower() != email.lower()
        or await repo.tenant_for_login(email) is not None
    ):
        return SIGNUP_ACCEPTED
    try:
        async with session.savepoint():
            account_id = await repo.create_account(creator_id, email, password_hash)
    except IntegrityError:
        return SIGNUP_ACCEPTED
    token_id, token, token_hash = _new_action_token(creator_id)
    await repo.add_action_token(
        token_id=token_id,
        creator_id=creator_id,
        account_id=account_id,
        purpose="verify_email",
        token_hash=token_hash,
        seconds=runtime.settings.action_token_seconds * 24,
    )
    await repo.queue_email(
        creator_id,
        email,
        "verify_email",
        json.dumps({"token": token, "url": f"{runtime.settings.public_base_url}/verify#{token}"}),
    )
    log.info("account created, verification queued", extra={"account_id": str(account_id)})
    return SIGNUP_ACCEPTED


async def verify_email(session: Session, token: str) -> None:
    _creator_id, row = await _redeem(session, token, "verify_email")
    await AuthRepository(session).mark_verified(row["account_id"])


def _pair(runtime: Runtime, account: Any) -> TokenPair:
    settings = runtime.settings
    now = int(time.time())
    base = {
        "iss": settings.jwt_issuer,
        "sub": str(account["account_id"]),
        "tid": str(account["creator_id"]),
        "ver": account["token_version"],
        "iat": now,
        "nbf": now,
    }
    access = runtime.keys.sign(
        {
            **base,
            "aud": ACCESS_AUDIENCE,
            "typ": "access",
            "exp": now + settings.access_token_seconds,
            "jti": uuid.uuid4().hex,
        }
    )
    refresh = runtime.keys.sign(
        {
            **base,
            "aud": REFRESH_AUDIENCE,
            "typ": "refresh",
            "exp": now + settings.refresh_token_seconds,
            "jti": uuid.uuid4().hex,
        }
    )
    return TokenPair(
        access_token=access, refresh_token=refresh, expires_in=settings.access_token_seconds
    )


async def login(runtime: Runtime, session: Session, email: str, password: str) -> TokenPair:
    repo = AuthRepository(session)
    account = None
    creator_id = await repo.tenant_for_login(email)
    if creator_id is not None:
        await session.set_tenant(creator_id)
        account = await repo.account_by_email(email)
    stored = account["password_hash"] if account else None
    if not await passwords.verify_password(stored, password) or account is None:
        raise Unauthorized("invalid e-mail or password")
    if account["email_verified_at"] is None:
        raise Forbidden("verify your e-mail address first: follow the link we sent")
    tenant = await load_tenant(runtime, session)
    if tenant is None:
        raise Unauthorized("invalid e-mail or password")
    if tenant.suspended:
        raise TenantSuspended("this creator is suspended; contact the platform team")
    if passwords.needs_rehash(account["password_hash"]):
        await repo.rehash(account["account_id"], await passwords.hash_password(password))
    return _pair(runtime, account)


def token_subject(claims: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    """(tenant, subject) of a verified token; a token without them is refused."""
    try:
        return uuid.UUID(claims["tid"]), uuid.UUID(claims["sub"])
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise Unauthorized() from error


async def refresh(runtime: Runtime, session: Session, token: str) -> TokenPair:
    claims = runtime.keys.verify(token, audience=REFRESH_AUDIENCE, token_type="refresh")
    creator_id, account_id = token_subject(claims)
    await session.set_tenant(creator_id)
    account = await AuthRepository(session).account(account_id)
    if account is None or account["token_version"] != claims.get("ver"):
        raise Unauthorized()
    tenant = await load_tenant(runtime, session)
    if tenant is None or tenant.suspended:
        raise Unauthorized()
    return _pair(runtime, account)


async def request_password_reset(runtime: Runtime, session: Session, email: str) -> Accepted:
    repo = AuthRepository(session)
    creator_id = await repo.tenant_for_login(email)
    if creator_id is None:
        return RESET_ACCEPTED
    await session.set_tenant(creator_id)
    account = await repo.account_by_email(email)
    if account is None:
        return RESET_ACCEPTED
    token_id, token, token_hash = _new_action_token(creator_id)
    await repo.add_action_token(
        token_id=token_id,
        creator_id=creator_id,
        account_id=account["account_id"],
        purpose="password_reset",
        token_hash=token_hash,
        seconds=runtime.settings.action_token_seconds,
    )
    await repo.queue_email(
        creator_id,
        account["email"],
        "password_reset",
        json.dumps({"token": token, "url": f"{runtime.settings.public_base_url}/reset#{token}"}),
    )
    return RESET_ACCEPTED


async def confirm_password_reset(session: Session, token: str, new_password: str) -> None:
    _creator_id, row = await _redeem(session, token, "password_reset")
    repo = AuthRepository(session)
    # A new password ends every session: token_version moves on.
    await repo.set_password(row["account_id"], await passwords.hash_password(new_password))
    await repo.mark_verified(row["account_id"])


# ---------------------------------------------------------------- API keys


@dataclass(frozen=True)
class ApiKeyIdentity:
    creator_id: uuid.UUID
    api_key_id: uuid.UUID
    secret: str


def parse_api_key(key: str) -> ApiKeyIdentity:
    """``cok_<creator hex>_<key id hex>_<secret>``; the tenant part is checked by the hash."""
    try:
        creator_hex, key_hex, secret = key.removeprefix(API_KEY_PREFIX).split("_", 2)
        return ApiKeyIdentity(uuid.UUID(hex=creator_hex), uuid.UUID(hex=key_hex), secret)
    except ValueError as error:
        raise Unauthorized() from error


async def authenticate_api_key(session: Session, key: str) -> tuple[uuid.UUID, frozenset[str]]:
    identity = parse_api_key(key)
    await session.set_tenant(identity.creator_id)
    repo = AuthRepository(session)
    row = await repo.api_key_for_auth(identity.api_key_id)
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), _digest(identity.secret)):
        raise Unauthorized()
    await repo.touch_api_key(identity.api_key_id)
    return identity.api_key_id, frozenset(row["scopes"])


def _key_public(row: Any) -> dict[str, Any]:
    return {**dict(row), "scopes": list(row["scopes"])}


async def create_api_key(
    session: Session, creator_id: uuid.UUID, data: ApiKeyCreate
) -> ApiKeyCreated:
    api_key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    key = f"{API_KEY_PREFIX}{creator_id.hex}_{api_key_id.hex}_{secret}"
    expires_at = (
        datetime.now(UTC) + timedelta(days=data.expires_in_days) if data.expires_in_days else None
    )
    row = await AuthRepository(session).create_api_key(
        api_key_id=api_key_id,
        creator_id=creator_id,
        name=data.name,
        prefix=f"{API_KEY_PREFIX}…{api_key_id.hex[:8]}",
        secret_hash=_digest(secret),
        scopes=sorted(set(data.scopes)),
        expires_at=expires_at,
    )
    return ApiKeyCreated(**_key_public(row), key=key)


async def list_api_keys(session: Session) -> list[ApiKeyPublic]:
    return [ApiKeyPublic(**_key_public(row)) for row in await AuthRepository(session).api_keys()]


async def revoke_api_key(session: Session, api_key_id: uuid.UUID) -> None:
    if not await AuthRepository(session).revoke_api_key(api_key_id):
        raise NotFound("no such API key")


# ---------------------------------------------------------------- end users


def _end_user_token(
    runtime: Runtime, creator_id: uuid.UUID, end_user_id: uuid.UUID, program_id: uuid.UUID
) -> EndUserToken:
    now = int(time.time())
    lifetime = runtime.settings.end_user_token_seconds
    token = runtime.keys.sign(
        {
            "iss": runtime.settings.jwt_issuer,
            "aud": END_USER_AUDIENCE,
            "typ": "end_user",
            "sub": str(end_user_id),
            "tid": str(creator_id),
            "pid": str(program_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
    )
    return EndUserToken(
        access_token=token, expires_in=lifetime, end_user_id=end_user_id, program_id=program_id
    )


async def issue_end_user_token(
    runtime: Runtime,
    session: Session,
    creator_id: uuid.UUID,
    end_user_id: uuid.UUID,
    program_id: uuid.UUID,
) -> EndUserToken:
    enrolled, _email = await AuthRepository(session).active_enrolment_email(end_user_id, program_id)
    if not enrolled:
        raise NotFound("no such end user enrolled in that program")
    return _end_user_token(runtime, creator_id, end_user_id, program_id)


async def send_magic_link(
    runtime: Runtime,
    session: Session,
    creator_id: uuid.UUID,
    end_user_id: uuid.UUID,
    program_id: uuid.UUID,
) -> Accepted:
    repo = AuthRepository(session)
    enrolled, email = await repo.active_enrolment_email(end_user_id, program_id)
    if not enrolled:
        raise NotFound("no such end user enrolled in that program")
    if not email:
        raise BadRequest("the end user has no e-mail address")
    token_id, token, token_hash = _new_action_token(creator_id)
    await repo.add_action_token(
        token_id=token_id,
        creator_id=creator_id,
        end_user_id=end_user_id,
        program_id=program_id,
        purpose="magic_link",
        token_hash=token_hash,
        seconds=runtime.settings.action_token_seconds,
    )
    await repo.queue_email(
        creator_id,
        email,
        "magic_link",
        json.dumps({"token": token, "url": f"{runtime.settings.public_base_url}/chat#{token}"}),
    )
    return MAGIC_LINK_ACCEPTED


async def redeem_magic_link(runtime: Runtime, session: Session, token: str) -> EndUserToken:
    creator_id, row = await _redeem(session, token, "magic_link")
    enrolled, _email = await AuthRepository(session).active_enrolment_email(
        row["end_user_id"], row["program_id"]
    )
    if not enrolled:
        raise BadRequest("invalid or expired token")
    return _end_user_token(runtime, creator_id, row["end_user_id"], row["program_id"])
