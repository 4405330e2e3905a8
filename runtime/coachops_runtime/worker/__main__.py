"""``python -m coachops_runtime.worker``: the pollers, with the runtime's settings, until
SIGTERM or SIGINT (the e-mail in flight is finished first)."""

from __future__ import annotations

import asyncio
import logging

from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.channels.outbox import ChannelPoller
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit import metrics
from coachops_runtime.kit.db import (
    assert_role_is_safe,
    create_engine,
    create_pool,
)
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.ingest import KnowledgePoller
from coachops_runtime.mail.outbox import OutboxPoller
from coachops_runtime.privacy.worker import PrivacyPoller
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.wiring import scheduler as proactive_scheduler
from coachops_runtime.retention.purge import RetentionPoller
from coachops_runtime.worker import process
from coachops_runtime.worker.loop import Poller, run_pollers

log = logging.getLogger("coachops.worker")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run every poller until ``stop`` is set."""
    engine = create_engine(settings)
    try:
        # The worker reads tenant rows as the shared runtime does: the same guard applies.
        await assert_role_is_safe(engine)
    finally:
        await engine.dispose()
    # An ingesting document holds its claiming connection and briefly a second one; a
    # reply holds a connection only between its steps, never while generating.
    ai = AiSettings()
    channel_settings = ChannelSettings()
    size = settings.mail_concurrency + 1 + 2 * settings.knowledge_concurrency + ai.concurrency
    size += channel_settings.concurrency + 1
    size += 3  # privacy: the claim, a step or read, a progress write
    size += 1  # retention: one purge transaction at a time
    proactive = ProactiveSettings()
    size += proactive.concurrency + 1  # proactive: one claiming transaction per lane
    pool = await create_pool(settings.model_copy(update={"db_pool_size": size}))
    replies = ReplyPoller(settings, pool, ai, stop=stop)
    channels = ChannelPoller(settings, pool, channel_settings)
    privacy = PrivacyPoller(settings, pool)
    pollers: list[Poller] = [OutboxPoller(settings, pool), replies, channels, privacy]
    pollers.append(RetentionPoller(pool))
    scheduler = proactive_scheduler(settings, pool, proactive, ai)
    pollers.append(scheduler)
    knowledge = None
    if settings.ollama_url and settings.chroma_url:
        knowledge = KnowledgePoller(settings, pool)
        pollers.append(knowledge)
    else:
        log.warning("no knowledge ingestion: COACHOPS_OLLAMA_URL or COACHOPS_CHROMA_URL unset")
    served = None
    if settings.worker_metrics_port:
        served = await metrics.serve("0.0.0.0", settings.worker_metrics_port)  # noqa: S104
    log.info("worker started", extra={"pollers": [p.name for p in pollers]})
    try:
        await run_pollers(pollers, stop, settings.worker_poll_seconds)
    finally:
        if served is not None:
            await served.cleanup()
        await replies.close()
        await channels.close()
        await privacy.close()
        await scheduler.engine.close()
        if knowledge is not None:
            await knowledge.close()
        await pool.close()
        log.info("worker stopped")


def main() -> None:
    process.main("coachops-worker", run)


if __name__ == "__main__":
    main()
