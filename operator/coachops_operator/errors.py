"""How the operator words a failed store or API call, in one place and without secrets.

What it says goes into conditions, Events and logs: never a DSN, SQL text or a value.
"""

from __future__ import annotations

import asyncpg

from coachops_operator.kube import KubeError


def describe(error: BaseException) -> str:
    """A short description of a store or API error that cannot carry a secret."""
    if isinstance(error, asyncpg.PostgresError):
        return f"{type(error).__name__} (SQLSTATE {error.sqlstate})"
    if isinstance(error, KubeError):
        # Status, reason and the apiserver's own message (names objects, never values).
        return str(error)
    return type(error).__name__
