"""The entry point a worker process shares with a scheduler replica: settings, logging,
SIGTERM/SIGINT as the stop event, and a clear exit code 2 for bad settings or an unsafe
database role."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from coachops_runtime.kit.db import UnsafeDatabaseRoleError
from coachops_runtime.kit.logging import configure_logging
from coachops_runtime.kit.settings import Settings, settings_or_exit

Run = Callable[[Settings, asyncio.Event], Awaitable[None]]


async def _until_stopped(run: Run, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main(name: str, run: Run) -> None:
    """Run ``run`` until SIGTERM or SIGINT; ``name`` prefixes what goes to stderr."""
    settings = settings_or_exit(name)
    configure_logging(settings.log_level)
    try:
        asyncio.run(_until_stopped(run, settings))
    except UnsafeDatabaseRoleError as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(2) from error
