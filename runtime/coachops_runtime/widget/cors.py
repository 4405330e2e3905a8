"""CORS of the end-user API (``/v1/me…``) for the pages that embed the widget, per program.

A browser sends ``Origin`` with every cross-origin call. A preflight (``OPTIONS``) carries
no credentials, so the program is unknown there: every preflight is answered with the
methods and headers the widget uses, which permits nothing by itself. The call itself
carries the end-user token, which names the program; its web channel's
``allowedOrigins`` decide:

* the origin is listed: the call runs and its answer carries
  ``Access-Control-Allow-Origin`` for that origin (and ``Vary: Origin``);
* it is not: 403 before anything runs, without CORS headers, so the page cannot read
  even the refusal;
* the token does not verify: the call runs, and the route answers 401 before doing
  anything; its answer is readable so the widget can say the session ended.

Same-origin calls (``Origin`` equal to the request's own scheme and host) and calls
without ``Origin`` (servers, curl) pass untouched: CORS protects browsers only.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coachops_runtime.auth.service import END_USER_AUDIENCE, token_subject
from coachops_runtime.container import Runtime
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import Forbidden, Unauthorized, problem_response
from coachops_runtime.widget.repository import WidgetRepository

log = logging.getLogger("coachops.widget")

ALLOW_METHODS = b"GET, POST, PATCH, DELETE"
ALLOW_HEADERS = b"authorization, content-type, last-event-id"
EXPOSE_HEADERS = b"retry-after, x-request-id, ratelimit, ratelimit-policy"
MAX_AGE = b"600"
_CACHE_LIMIT = 10_000


def is_end_user_path(path: str) -> bool:
    return path == "/v1/me" or path.startswith("/v1/me/")


class WidgetCors:
    """Pure ASGI middleware (no per-request objects on the paths it does not touch)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # program id -> (expires at, allowed origins)
        self._origins: dict[uuid.UUID, tuple[float, frozenset[str]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_end_user_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None or _same_origin(scope, origin, headers.get(b"host")):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await _preflight(origin, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        if not await self._readable(runtime, origin, headers.get(b"authorization")):
            refusal = Forbidden(
                "this page's origin may not call the end-user API: list it in the "
                "program's web channel allowedOrigins"
            )
            response = problem_response(
                Request(scope), refusal.status, refusal.slug, refusal.title, refusal.detail
            )
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _readable(self, runtime: Runtime, origin: bytes, authorization: bytes | None) -> bool:
        scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return True  # the route refuses the call before it does anything
        try:
            claims = runtime.keys.verify(
                token.strip(), audience=END_USER_AUDIENCE, token_type="end_user"
            )
            tenant_id, _end_user = token_subject(claims)
            program_id = uuid.UUID(str(claims.get("pid")))
        except (Unauthorized, ValueError):
            return True  # the route refuses the token before it does anything
        allowed = await self._allowed(runtime, tenant_id, program_id)
        if origin.decode("latin-1") in allowed:
            return True
        log.info(
            "end-user call from an origin the program does not list",
            extra={"program_id": str(program_id)},
        )
        return False

    async def _allowed(
        self, runtime: Runtime, tenant_id: uuid.UUID, program_id: uuid.UUID
    ) -> frozenset[str]:
        cached = self._origins.get(program_id)
        if cached is not None and cached[0] >= time.monotonic():
            return cached[1]
        async with runtime.pool.acquire() as connection:
            session = Session(connection)
            try:
                await session.set_tenant(tenant_id)
                origins = await WidgetRepository(session).allowed_origins(program_id)
            finally:
                await session.finish(commit=False)
        if len(self._origins) >= _CACHE_LIMIT:
            self._origins.clear()
        self._origins[program_id] = (
            time.monotonic() + runtime.settings.tenant_cache_seconds,
            origins,
        )
        return origins


def _same_origin(scope: Scope, origin: bytes, host: bytes | None) -> bool:
    return host is not None and origin == scope["scheme"].encode() + b"://" + host


async def _preflight(origin: bytes, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", ALLOW_HEADERS),
                (b"access-control-max-age", MAX_AGE),
                (b"vary", b"Origin"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
