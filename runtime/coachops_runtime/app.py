"""The application factory: settings in, a FastAPI app whose lifespan owns the clients."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from coachops_runtime.ai.endpoints import router as ai_router
from coachops_runtime.ai.safety.endpoints import router as safety_router
from coachops_runtime.analytics.endpoints import router as analytics_router
from coachops_runtime.audit.endpoints import router as audit_router
from coachops_runtime.auth.dependencies import BEARER_SCHEME, bearer_routes
from coachops_runtime.auth.endpoints import router as auth_router
from coachops_runtime.channels.endpoints import router as channels_router
from coachops_runtime.consent.endpoints import router as consent_router
from coachops_runtime.container import Runtime
from coachops_runtime.conversations.endpoints import router as conversations_router
from coachops_runtime.creators.endpoints import router as creators_router
from coachops_runtime.endusers.endpoints import router as endusers_router
from coachops_runtime.goals.endpoints import router as goals_router
from coachops_runtime.kit.errors import ProblemDetails, install_error_handlers
from coachops_runtime.kit.health import router as health_router
from coachops_runtime.kit.middleware import RequestMiddleware
from coachops_runtime.kit.settings import Settings
from coachops_runtime.kit.transaction import TransactionMiddleware
from coachops_runtime.knowledge.endpoints import router as knowledge_router
from coachops_runtime.privacy.endpoints import router as privacy_router
from coachops_runtime.proactive.endpoints import router as proactive_router
from coachops_runtime.programs.endpoints import router as programs_router
from coachops_runtime.widget.cors import WidgetCors
from coachops_runtime.widget.endpoints import router as widget_router

DESCRIPTION = """\
The coachops creator hub and end-user API. Every request runs under its caller's tenant,
enforced by PostgreSQL row-level security. Errors are RFC 9457 problem details
(`application/problem+json`). Authenticate with `Authorization: Bearer <token>`: a creator
access token from `/v1/auth/login`, a creator API key (`cok_…`), or on `/v1/me/…` an
end-user token.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings or Settings())
        app.state.runtime = runtime
        # What exists now lives as long as the process: keep it out of every GC pass. A
        # request allocates a few hundred objects that die with it, so young collections
        # ran every couple of requests with the default threshold of 700; collecting
        # every 50,000 allocations gave ~4 % more requests per second (bench/api_bench.py).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="coachops runtime",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Metrics are Prometheus (kit/middleware.py). FastAPI's OpenTelemetry hooks asked
        # three providers on every request whether anyone was listening (~1 % of its CPU).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.add_middleware(TransactionMiddleware)  # inside: ends the transaction first
    app.add_middleware(WidgetCors)  # CORS of /v1/me for the widget's pages, per program
    app.add_middleware(RequestMiddleware)
    # The routes go straight onto the app's router: include_router() keeps each router as a
    # lazily resolved branch, whose matching cost ~30 % of a request's CPU (measured with
    # py-spy under bench/api_bench.py). The routes already carry their prefixes and tags.
    # Busiest first: matching is a linear scan.
    for router in (
        conversations_router,
        endusers_router,
        programs_router,
        knowledge_router,
        goals_router,
        safety_router,
        ai_router,
        creators_router,
        analytics_router,
        audit_router,
        consent_router,
        proactive_router,
        auth_router,
        channels_router,
        widget_router,
        privacy_router,
        health_router,
    ):
        app.router.routes.extend(router.routes)

    original_openapi = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = original_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["ProblemDetails"] = ProblemDetails.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemes = schema["components"].setdefault("securitySchemes", {})
            schemes["HTTPBearer"] = BEARER_SCHEME
            for route in bearer_routes(app.routes):
                if route.include_in_schema:
                    for method in route.methods or ():
                        operation = schema["paths"][route.path_format][method.lower()]
                        operation["security"] = [{"HTTPBearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
