"""``python -m coachops_runtime.proactive``: a scheduler replica alone (the worker runs the
same poller next to its others); any number may run at once. Stops on SIGTERM or SIGINT
after the batch in flight."""

from __future__ import annotations

import asyncio
import logging

from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.kit.db import (
    assert_role_is_safe,
    create_engine,
    create_pool,
)
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.wiring import scheduler
from coachops_runtime.worker import process
from coachops_runtime.worker.loop import run_pollers

log = logging.getLogger("coachops.worker.proactive")


async def run(settings: Settings, stop: asyncio.Event) -> None:
    engine = create_engine(settings)
    try:
        await assert_role_is_safe(engine)
    finally:
        await engine.dispose()
    proactive = ProactiveSettings()
    size = proactive.concurrency + 2
    pool = await create_pool(settings.model_copy(update={"db_pool_size": size}))
    poller: ProactivePoller = scheduler(settings, pool, proactive, AiSettings())
    log.info("scheduler started")
    try:
        await run_pollers([poller], stop, settings.worker_poll_seconds)
    finally:
        await poller.engine.close()
        await pool.close()
        log.info("scheduler stopped")


def main() -> None:
    process.main("coachops-scheduler", run)


if __name__ == "__main__":
    main()
