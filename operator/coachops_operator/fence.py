"""The leader's fence: no request leaves this process once its Lease may have expired.

The elector arms the fence with a deadline after every successful renewal: the monotonic
time the renewal was sent plus the Lease duration less a margin. Every request to the
apiserver (this operator's client and kopf's session) and every store call checks it
first; past the deadline the process exits at once, before a standby can have taken
over. A frozen or starved process (SIGSTOP, a paused VM, a stalled event loop) therefore
cannot act on a Lease it no longer holds when it runs again: its first request ends it.
The Deployment restarts it as a standby.

``time.monotonic`` keeps counting while the process is stopped, so the time spent frozen
counts against the deadline.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time

log = logging.getLogger("coachops_operator.leader")

# Distinct from a crash (1) so the restart reason is plain in `kubectl describe pod`.
EXIT_CODE = 3

_deadline = math.inf  # unarmed: a standalone operator or a standby makes no leader's writes


def arm(deadline: float) -> None:
    """Writes are allowed until ``deadline`` (``time.monotonic`` seconds)."""
    global _deadline  # one fence per process, checked on every request
    _deadline = deadline


def disarm() -> None:
    global _deadline
    _deadline = math.inf


def remaining() -> float:
    return _deadline - time.monotonic()


def check() -> None:
    """Exit the process if the Lease may have expired."""
    overdue = -remaining()
    if overdue >= 0:
        stop(f"the Lease was last renewed too long ago ({overdue:.1f} s past the deadline)")


def stop(why: str) -> None:
    """Exit now: no cleanup, no pending write, no graceful shutdown that could still act."""
    log.critical("leadership lost: %s; exiting at once (code %d)", why, EXIT_CODE)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_CODE)
