"""One pure ASGI middleware: request ids, the access log line, and latency metrics.

It also answers an unhandled exception with the 500 problem itself: Starlette's own
handler runs outside every middleware, after the request id is gone, so its answer would
carry neither the ``request_id`` nor the ``X-Request-ID`` header the log line has.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coachops_runtime.kit.context import request_id_var, tenant_id_var
from coachops_runtime.kit.errors import internal_error

REQUEST_SECONDS = Histogram(
    "coachops_http_request_duration_seconds",
    "HTTP request latency by route template, method and status class.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
REQUEST_ERRORS = Counter(
    "coachops_http_errors_total",
    "HTTP responses with status >= 500 by route template.",
    ["route", "method", "status"],
)

log = logging.getLogger("coachops.access")


@functools.lru_cache(maxsize=1024)
def _latency(route: str, method: str, status: int) -> Any:
    """The histogram child of one route, method and status class (``labels`` hashes and
    locks on every call; routes are templates, so there are few of these)."""
    return REQUEST_SECONDS.labels(route, method, f"{status // 100}xx")


_QUIET = frozenset({"/livez", "/readyz", "/metrics"})


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")[:64]
                if candidate.isascii() and candidate.replace("-", "").isalnum():
                    request_id = candidate
                break
        request_id = request_id or secrets.token_hex(16)
        request_token = request_id_var.set(request_id)
        tenant_token = tenant_id_var.set("")
        status = 500
        started = time.perf_counter()
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            if response_started:
                raise  # too late for a problem document; the server ends the response
            await internal_error(Request(scope), error)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            _latency(template, method, status).observe(elapsed)
            if status >= 500:
                REQUEST_ERRORS.labels(template, method, str(status)).inc()
            if template not in _QUIET and log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(request_token)
            tenant_id_var.reset(tenant_token)
