"""Check-in schedules: five-field cron expressions, parsed by croniter.

One function, shared by the Pydantic model (so the runtime's API answers 422) and the
operator (which reports a bad expression that reached the cluster as ScheduleReady=False).
"""

from __future__ import annotations

from croniter import croniter

FIELDS = 5


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a usable five-field cron expression, or None when it is."""
    fields = expression.split()
    if len(fields) != FIELDS:
        return (
            f"cron {expression!r} has {len(fields)} fields; five are needed "
            "(minute hour day-of-month month day-of-week), e.g. '0 9 * * *'"
        )
    if not croniter.is_valid(expression):
        return (
            f"cron {expression!r} is not a valid expression: each field must be a number in "
            "range, '*', a list, a range or a step (e.g. '0 9 * * MON-FRI')"
        )
    return None
