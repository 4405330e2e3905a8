"""The engine's one clock. Every time the engine compares or writes (what is due, quiet
hours, the local day, a message's ``created_at``, a decision's time) comes from it and is
passed to PostgreSQL as a parameter; the engine's SQL never calls ``now()``, so the
database cannot disagree with it.

* ``SystemClock``: the machine's time (production);
* ``FixedClock``: set and moved by a test, in-process;
* ``ScaledClock``: ``start + (time.time() - epoch) * speed``, the same in every process
  given the same three numbers (``COACHOPS_PROACTIVE_CLOCK_*``), so several scheduler
  processes can live through a simulated week in seconds (tests and benchmarks).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        self.at += delta
        return self.at


class ScaledClock:
    def __init__(self, start: datetime, epoch: float, speed: float) -> None:
        self.start = start.astimezone(UTC)
        self.epoch = epoch
        self.speed = speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.epoch) * self.speed)
