"""When to come back to an object that is not done: the retry decision, as data.

A step that failed (a store down, the API refusing) backs off: 1, 2, 4 ... 60 s. A step
that waits for another controller (the quota controller counting a new ResourceQuota)
is no failure and polls every few seconds instead. The kopf handlers turn the decision
into ``kopf.TemporaryError(delay=...)``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

POLL_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 60.0


class RetryKind(enum.Enum):
    BACKOFF = "backoff"  # something failed
    POLL = "poll"  # waiting for another controller; nothing failed


@dataclass(frozen=True)
class Retry:
    """One reason to come back, and of which kind."""

    reason: str
    kind: RetryKind = RetryKind.BACKOFF


class TryAgainError(Exception):
    """Not done yet: come back in ``delay`` seconds (the message says why)."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


def backoff(attempt: int) -> float:
    """Seconds before the next attempt after ``attempt`` earlier ones: 1, 2, 4 ... 60."""
    return float(min(BACKOFF_CAP_SECONDS, 2 ** min(max(attempt, 0), 6)))


def delay(retries: Sequence[Retry], attempt: int) -> float | None:
    """Seconds until the next attempt (None: nothing to retry). Any failure backs off;
    only waiting polls."""
    if not retries:
        return None
    if all(retry.kind is RetryKind.POLL for retry in retries):
        return POLL_SECONDS
    return backoff(attempt)


def summary(retries: Sequence[Retry]) -> str:
    return "; ".join(retry.reason for retry in retries)
