"""Who is calling: creator principals (JWT or API key) and end users, bound to a tenant.

Each alias resolves the credentials, binds the request's transaction to the caller's
tenant with ``SET LOCAL``, refuses suspended tenants, and applies the tenant's rate limit
(or the end user's). When Redis is down, rate limits fail open for everything except AI
calls, which fail closed (see ``ai_gate``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from coachops_crds.constants import tenant_redis_prefix
from coachops_runtime.auth.schemas import ALL_SCOPES
from coachops_runtime.auth.service import (
    ACCESS_AUDIENCE,
    API_KEY_PREFIX,
    END_USER_AUDIENCE,
    authenticate_api_key,
    token_subject,
)
from coachops_runtime.container import Runtime, runtime_of
from coachops_runtime.creators.schemas import Tenant
from coachops_runtime.creators.service import load_tenant, month_key
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import (
    Forbidden,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    TenantSuspended,
    Unauthorized,
)
from coachops_runtime.kit.ratelimit import CacheUnavailableError
from coachops_runtime.kit.transaction import request_session

log = logging.getLogger("coachops.auth")

# The OpenAPI security scheme of every route that takes one of the dependencies below
# (app.py adds it to the document: see ``bearer_routes``).
BEARER_SCHEME = {
    "description": "A creator access token (JWT), a creator API key (cok_…) or, on end-user "
    "routes, an end-user token.",
    "scheme": "bearer",
    "type": "http",
}
AUTHENTICATED: set[Callable[..., Any]] = set()


_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


def _authenticated(dependency: _Dependency) -> _Dependency:
    AUTHENTICATED.add(dependency)
    return dependency


def bearer_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The routes whose dependencies authenticate the caller."""

    def authenticates(dependant: Any) -> bool:
        return any(d.call in AUTHENTICATED or authenticates(d) for d in dependant.dependencies)

    for route in routes:
        if isinstance(route, APIRoute) and authenticates(route.dependant):
            yield route


def _bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 without one.

    Read from the raw headers, not through FastAPI's HTTPBearer: a security sub-dependency
    cost ~3 % of a request's CPU (py-spy under bench/api_bench.py).
    """
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                return token
            break
    raise Unauthorized()


@dataclass(frozen=True)
class CreatorContext:
    """A creator's request: its tenant, its transaction and what it may do."""

    runtime: Runtime
    session: Session
    tenant: Tenant
    account_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    scopes: frozenset[str]

    @property
    def creator_id(self) -> uuid.UUID:
        return self.tenant.creator_id


@dataclass(frozen=True)
class EndUserContext:
    runtime: Runtime
    session: Session
    tenant: Tenant
    end_user_id: uuid.UUID
    program_id: uuid.UUID


async def _bound_tenant(runtime: Runtime, session: Session) -> Tenant:
    tenant = await load_tenant(runtime, session)
    if tenant is None:
        raise Unauthorized()
    if tenant.suspended:
        raise TenantSuspended("this creator is suspended; contact the platform team")
    return tenant


async def _rate_limit(
    runtime: Runtime, response: Response, key: str, policy: str, rate: int
) -> None:
    try:
        decision = await runtime.limiter.hit(key, policy, rate)
    except CacheUnavailableError:
        log.warning("rate limiter unavailable; failing open", extra={"policy": policy})
        return
    if not decision.allowed:
        raise RateLimited(
            f"more than {decision.limit} requests per {decision.window} s",
            headers=decision.headers(),
        )
    response.headers.update(decision.headers())


@_authenticated
async def creator_context(request: Request, response: Response) -> CreatorContext:
    """The creator's request: tenant bound, rate limit taken, transaction open."""
    token = _bearer_token(request)
    runtime = runtime_of(request)
    session = await request_session(request.scope, runtime.pool)
    account_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    if token.startswith(API_KEY_PREFIX):
        api_key_id, scopes = await authenticate_api_key(session, token)
    else:
        claims = runtime.keys.verify(token, audience=ACCESS_AUDIENCE, token_type="access")
        tenant_id, account_id = token_subject(claims)
        await session.set_tenant(tenant_id)
        scopes = ALL_SCOPES
    tenant = await _bound_tenant(runtime, session)
    await _rate_limit(
        runtime,
        response,
        f"{tenant_redis_prefix(tenant.name)}rl:tenant",
        "tenant",
        tenant.plan.requests_per_second,
    )
    return CreatorContext(runtime, session, tenant, account_id, api_key_id, scopes)


# Each request-facing dependency below is a single FastAPI dependency: FastAPI's
# per-dependency overhead was the largest item of a request's CPU once
# routing was flat (py-spy, bench/api_bench.py). The transaction they open is ended by
# TransactionMiddleware (kit/transaction.py) before the response starts.


def requires(scope: str) -> Callable[..., Awaitable[CreatorContext]]:
    """A dependency: the creator context, if the caller holds ``scope``."""

    @_authenticated
    async def check(request: Request, response: Response) -> CreatorContext:
        context = await creator_context(request, response)
        if scope not in context.scopes:
            raise Forbidden(f"this API key lacks the {scope} scope")
        return context

    return check


@_authenticated
async def account_context(request: Request, response: Response) -> CreatorContext:
    """Only a signed-in account (not an API key) may manage API keys."""
    context = await creator_context(request, response)
    if context.account_id is None:
        raise Forbidden("API keys are managed with an account session, not an API key")
    return context


@_authenticated
async def end_user_context(request: Request, response: Response) -> EndUserContext:
    token = _bearer_token(request)
    runtime = runtime_of(request)
    claims = runtime.keys.verify(token, audience=END_USER_AUDIENCE, token_type="end_user")
    tenant_id, end_user_id = token_subject(claims)
    try:
        program_id = uuid.UUID(str(claims.get("pid")))
    except ValueError as error:
        raise Unauthorized() from error
    session = await request_session(request.scope, runtime.pool)
    await session.set_tenant(tenant_id)
    tenant = await _bound_tenant(runtime, session)
    await _rate_limit(
        runtime,
        response,
        f"{tenant_redis_prefix(tenant.name)}rl:end-user:{end_user_id}",
        "end-user",
        runtime.settings.end_user_requests_per_second,
    )
    return EndUserContext(runtime, session, tenant, end_user_id, program_id)


async def ai_gate(runtime: Runtime, tenant: Tenant, cost: int = 1) -> None:
    """Take ``cost`` AI messages from the monthly quota; fail closed when Redis is down."""
    try:
        result = await runtime.limiter.consume_quota(
            month_key(tenant), tenant.plan.messages_per_month, cost
        )
    except CacheUnavailableError as error:
        raise ServiceUnavailable(
            "the quota store is unavailable, so AI replies are paused; retry shortly",
            retry_after=5,
        ) from error
    if not result.allowed:
        raise QuotaExceeded(
            f"the monthly quota of {result.limit} AI messages is used up; it resets on the "
            "first day of next month (UTC), or upgrade the plan"
        )


def _holding(scope: str) -> Any:
    return Depends(requires(scope))


CreatorDep = Annotated[CreatorContext, Depends(creator_context)]
AccountDep = Annotated[CreatorContext, Depends(account_context)]
EndUserDep = Annotated[EndUserContext, Depends(end_user_context)]
ProgramsRead = Annotated[CreatorContext, _holding("programs:read")]
ProgramsWrite = Annotated[CreatorContext, _holding("programs:write")]
EndUsersRead = Annotated[CreatorContext, _holding("endusers:read")]
EndUsersWrite = Annotated[CreatorContext, _holding("endusers:write")]
ConversationsRead = Annotated[CreatorContext, _holding("conversations:read")]
ConversationsWrite = Annotated[CreatorContext, _holding("conversations:write")]
AnalyticsRead = Annotated[CreatorContext, _holding("analytics:read")]
