"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


@router.get("/livez", response_model=Health)
async def livez() -> Health:
    """The process is alive (no dependency is checked)."""
    return Health(status="ok")


async def _check(probe: Callable[[], Awaitable[Any]]) -> str:
    try:
        await asyncio.wait_for(probe(), timeout=1.0)
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return f"failed: {type(error).__name__}"
    return "ok"


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is not reachable"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: PostgreSQL and Redis answer."""
    runtime = request.app.state.runtime

    async def database() -> None:
        await runtime.pool.fetchval("SELECT 1")

    checks = {
        "postgres": await _check(database),
        "redis": await _check(runtime.redis.ping),
    }
    ok = all(value == "ok" for value in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
