"""``python -m coachops_runtime.proactive``: a scheduler replica alone (the worker runs the
same poller next to its others); any number may run at once. Stops on SIGTERM or SIGINT
after the batch in flight."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.kit.db import (
    UnsafeDatabaseRoleError,
    assert_role_is_safe,
    create_engine,
    create_pool,
)
from coachops_runtime.kit.logging import configure_logging
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.wiring import scheduler
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


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> None:
    try:
        settings = Settings()
    except (ValidationError, ValueError) as error:
        print(f"coachops-scheduler: invalid settings: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    configure_logging(settings.log_level)
    try:
        asyncio.run(_main(settings))
    except UnsafeDatabaseRoleError as error:
        print(f"coachops-scheduler: {error}", file=sys.stderr)
        raise SystemExit(2) from error


if __name__ == "__main__":
    main()
