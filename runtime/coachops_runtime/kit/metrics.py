"""Prometheus metrics of the worker's pollers, and the worker's scrape endpoint.

The API's request metrics live in ``kit.middleware`` and are served at the API's own
``/metrics``; these are counted by the worker process, which serves them on
``COACHOPS_WORKER_METRICS_PORT`` (0: not served). Both use prometheus_client's default
registry.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
# Up to an hour: the lag alert's threshold is 300 s, and histogram_quantile never answers
# above the highest finite bucket, so the buckets must reach past it.
LAG_SECONDS = (0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

AI_REPLY_SECONDS = Histogram(
    "coachops_ai_reply_duration_seconds",
    "A stored AI reply: from its job's claim to the reply's commit.",
    buckets=SECONDS,
)
AI_FIRST_TOKEN_SECONDS = Histogram(
    "coachops_ai_first_token_seconds",
    "Time to first token: from the request to the model to its first streamed piece.",
    buckets=SECONDS,
)
CHANNEL_DELIVERIES = Counter(
    "coachops_channel_deliveries",
    "Channel delivery attempts by channel and outcome (sent, retry, dead, suppressed).",
    ["channel", "outcome"],
)
EMAILS = Counter(
    "coachops_email_deliveries",
    "E-mail outbox delivery attempts by outcome (sent, retry, dead).",
    ["outcome"],
)

PROACTIVE_OUTCOMES = Counter(
    "coachops_proactive_outcomes",
    "Proactive schedules the scheduler handled, by outcome: sent, deferred (quiet hours), "
    "planned, removed, failed, or the reason a message was skipped (consent, max_per_day, ...).",
    ["kind", "outcome"],
)
PROACTIVE_LAG_SECONDS = Histogram(
    "coachops_proactive_lag_seconds",
    "How late the scheduler took a due schedule: from its due time to the engine's clock.",
    buckets=LAG_SECONDS,
)


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(host: str, port: int) -> web.AppRunner:
    """Serve ``/metrics`` on ``host:port`` until the returned runner is cleaned up."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
