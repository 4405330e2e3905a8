"""Wake-ups for a poller: a LISTEN connection that sets ``event`` on each NOTIFY of one
channel, so an idle poller (``loop.py`` waits on a poller's ``wake``) takes announced work
at once instead of at its next poll. Best effort: without the connection, polling alone
still finds every item, so a failure to listen is logged and tried again next poll."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from coachops_runtime.kit.settings import Settings

log = logging.getLogger("coachops.worker")


class WakeUps:
    def __init__(self, settings: Settings, channel: str, what: str) -> None:
        self.settings = settings
        self.channel = channel
        self.what = what  # for the log line: "deliveries", "reply jobs"
        self.event = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def listen(self) -> None:
        """Open the listening connection unless it is open."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self.settings.asyncpg_dsn)
            await self._listener.add_listener(self.channel, lambda *_: self.event.set())
        except (asyncpg.PostgresError, OSError) as error:
            self._listener = None
            log.warning(f"no wake-ups for {self.what}", extra={"error": str(error)[:200]})

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
