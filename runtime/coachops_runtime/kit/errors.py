"""One exception family, rendered as RFC 9457 problem details by one handler."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from coachops_runtime.kit.context import request_id_var

PROBLEM = "application/problem+json"
TYPE_BASE = "https://coachops.dev/problems/"
log = logging.getLogger("coachops.errors")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URI that identifies the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field("", description="Explanation specific to this occurrence.")
    instance: str = Field("", description="The request path.")
    request_id: str = Field("", description="Id of the request, as in the logs.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="Field errors of a request that failed validation."
    )


class CoachopsError(Exception):
    """Base of every error the API returns on purpose."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = errors


class BadRequest(CoachopsError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(CoachopsError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "invalid or missing credentials") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="coachops"'})


class Forbidden(CoachopsError):
    status, slug, title = 403, "forbidden", "Forbidden"


class TenantSuspended(CoachopsError):
    status, slug, title = 403, "tenant-suspended", "Tenant suspended"


class NotFound(CoachopsError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(CoachopsError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(CoachopsError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(CoachopsError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(CoachopsError):
    status, slug, title = 422, "validation", "Request validation failed"


class RateLimited(CoachopsError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class QuotaExceeded(CoachopsError):
    status, slug, title = 429, "quota-exceeded", "Monthly message quota exhausted"


class ServiceUnavailable(CoachopsError):
    status, slug, title = 503, "unavailable", "Service temporarily unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str = "",
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = ProblemDetails(
        type=TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=request_id_var.get(),
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM,
    )


def internal_error(request: Request, error: BaseException) -> JSONResponse:
    """The 500 problem for an exception nothing expected (logged with its traceback)."""
    log.error("unhandled error", exc_info=error)
    return problem_response(request, 500, "internal", "Internal server error")


def install_error_handlers(app: FastAPI) -> None:
    async def coachops_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, CoachopsError)
        return problem_response(
            request,
            error.status,
            error.slug,
            error.title,
            error.detail,
            error.headers,
            error.errors,
        )

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in error.errors()
        ]
        return problem_response(
            request, 422, ValidationFailed.slug, ValidationFailed.title, errors=errors
        )

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http")
        return problem_response(
            request,
            error.status_code,
            slug,
            str(error.detail),
            headers=error.headers,
        )

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # Only for an app without RequestMiddleware (which renders unhandled errors inside
        # the request id's scope, see internal_error): Starlette calls this outermost.
        return internal_error(request, error)

    app.add_exception_handler(CoachopsError, coachops_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem+json errors (400 and 422 always included:
    a body that is not JSON is a 400, one that does not validate a 422)."""
    schema = {"$ref": "#/components/schemas/ProblemDetails"}
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Forbidden (scope, or tenant suspended)",
        404: "Not found in the caller's tenant",
        409: "Conflict",
        413: "The request body is larger than the limit",
        415: "The media type is not supported",
        422: "Validation failed",
        429: "Rate limit or monthly quota exceeded",
        503: "A dependency is unavailable; retry after Retry-After seconds",
    }
    return {
        status: {"description": descriptions[status], "content": {PROBLEM: {"schema": schema}}}
        for status in sorted({*statuses, 400, 422})
    }
