"""Auth routes: accounts, sessions, JWKS, API keys and end-user tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response, status

from coachops_runtime.audit import service as audit
from coachops_runtime.auth import service
from coachops_runtime.auth.dependencies import AccountDep, EndUsersWrite
from coachops_runtime.auth.keys import TokensIssuedElsewhereError
from coachops_runtime.auth.schemas import (
    Accepted,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    EndUserToken,
    EndUserTokenCreate,
    Jwks,
    LoginCreate,
    MagicLinkCreate,
    PasswordResetConfirm,
    PasswordResetCreate,
    RefreshCreate,
    SignupCreate,
    TokenPair,
    TokenRequest,
)
from coachops_runtime.container import RuntimeDep, SessionDep
from coachops_runtime.kit.errors import problems

router = APIRouter(tags=["auth"])


async def _platform_only(runtime: RuntimeDep) -> None:
    """Accounts and sessions live on the platform's shared runtime; a dedicated runtime
    (one tenant, verify-only keys, a role without the account functions) only serves."""
    if runtime.settings.tenant:
        raise TokensIssuedElsewhereError(
            "this runtime serves one tenant; sign up, sign in and manage accounts through the "
            "platform's shared runtime"
        )


PLATFORM_ONLY = [Depends(_platform_only)]


@router.get("/.well-known/jwks.json", response_model=Jwks, responses=problems())
async def jwks(runtime: RuntimeDep, response: Response) -> Jwks:
    """Public keys that verify coachops tokens (every key that is still trusted)."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return Jwks.model_validate(runtime.keys.jwks())


@router.post(
    "/v1/auth/signup",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problems(),
    dependencies=PLATFORM_ONLY,
)
async def signup(data: SignupCreate, runtime: RuntimeDep, session: SessionDep) -> Accepted:
    """Claim your Creator: the e-mail must be its contact e-mail; a verification link follows."""
    return await service.signup(runtime, session, data.creator, data.email, data.password)


@router.post(
    "/v1/auth/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400),
    dependencies=PLATFORM_ONLY,
)
async def verify(data: TokenRequest, session: SessionDep) -> None:
    """Verify the account's e-mail with the token from the verification link."""
    await service.verify_email(session, data.token)


@router.post(
    "/v1/auth/login",
    response_model=TokenPair,
    responses=problems(401, 403),
    dependencies=PLATFORM_ONLY,
)
async def login(data: LoginCreate, runtime: RuntimeDep, session: SessionDep) -> TokenPair:
    """Exchange e-mail and password for an access token and a refresh token."""
    return await service.login(runtime, session, data.email, data.password)


@router.post(
    "/v1/auth/refresh",
    response_model=TokenPair,
    responses=problems(401),
    dependencies=PLATFORM_ONLY,
)
async def refresh(data: RefreshCreate, runtime: RuntimeDep, session: SessionDep) -> TokenPair:
    """A new token pair for a valid refresh token (invalidated by a password reset)."""
    return await service.refresh(runtime, session, data.refresh_token)


@router.post(
    "/v1/auth/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problems(),
    dependencies=PLATFORM_ONLY,
)
async def password_reset(
    data: PasswordResetCreate, runtime: RuntimeDep, session: SessionDep
) -> Accepted:
    """Send a password reset link to the account's e-mail, if there is such an account."""
    return await service.request_password_reset(runtime, session, data.email)


@router.post(
    "/v1/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(400),
    dependencies=PLATFORM_ONLY,
)
async def password_reset_confirm(data: PasswordResetConfirm, session: SessionDep) -> None:
    """Set a new password with a reset token; every existing session ends."""
    await service.confirm_password_reset(session, data.token, data.new_password)


@router.post(
    "/v1/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problems(401, 403, 429),
)
async def create_api_key(data: ApiKeyCreate, context: AccountDep) -> ApiKeyCreated:
    """Create an API key for your backend. The key is shown once."""
    created = await service.create_api_key(context.session, context.creator_id, data)
    await audit.record(
        context, "api_key.create", "api_key", created.api_key_id, {"scopes": sorted(data.scopes)}
    )
    return created


@router.get("/v1/api-keys", response_model=list[ApiKeyPublic], responses=problems(401, 403, 429))
async def list_api_keys(context: AccountDep) -> list[ApiKeyPublic]:
    """Your API keys (never the keys themselves), with when each was last used."""
    return await service.list_api_keys(context.session)


@router.delete(
    "/v1/api-keys/{api_key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 429),
)
async def revoke_api_key(api_key_id: uuid.UUID, context: AccountDep) -> None:
    """Revoke an API key; it stops working at once."""
    await service.revoke_api_key(context.session, api_key_id)
    await audit.record(context, "api_key.revoke", "api_key", api_key_id)


@router.post(
    "/v1/end-user-tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=EndUserToken,
    responses=problems(401, 403, 404, 429),
)
async def issue_end_user_token(
    data: EndUserTokenCreate, runtime: RuntimeDep, context: EndUsersWrite
) -> EndUserToken:
    """Issue a token for one end user in one program (for your backend or web widget)."""
    return await service.issue_end_user_token(
        runtime, context.session, context.creator_id, data.end_user_id, data.program_id
    )


@router.post(
    "/v1/end-users/{end_user_id}/magic-links",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problems(400, 401, 403, 404, 429),
)
async def send_magic_link(
    end_user_id: uuid.UUID, data: MagicLinkCreate, runtime: RuntimeDep, context: EndUsersWrite
) -> Accepted:
    """E-mail the end user a sign-in link to one program."""
    return await service.send_magic_link(
        runtime, context.session, context.creator_id, end_user_id, data.program_id
    )


@router.post(
    "/v1/auth/magic-link/redeem",
    response_model=EndUserToken,
    responses=problems(400),
    dependencies=PLATFORM_ONLY,
)
async def redeem_magic_link(
    data: TokenRequest, runtime: RuntimeDep, session: SessionDep
) -> EndUserToken:
    """Exchange a magic-link token for an end-user token (single use)."""
    return await service.redeem_magic_link(runtime, session, data.token)
