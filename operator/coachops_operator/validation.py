"""One rendering of a Pydantic validation error, for conditions, events and log lines."""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(error: ValidationError, prefix: str = "") -> str:
    """The first problem as ``<prefix><field path>: <message>`` (e.g. ``spec.plan.cpu: ...``)."""
    first = error.errors()[0]
    where = prefix + ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
