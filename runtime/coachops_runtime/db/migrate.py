"""Apply the Alembic migrations: ``python -m coachops_runtime.db.migrate --dsn ...``.

Migrations run as the schema owner, never as the runtime role. ``runtime_role`` names the
role the shared runtime logs in as: it gets DML grants and may set the tenant context.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(dsn: str, runtime_role: str = "coachops_runtime") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["dsn"] = dsn
    config.attributes["runtime_role"] = runtime_role
    return config


def upgrade(dsn: str, revision: str = "head", runtime_role: str = "coachops_runtime") -> None:
    """Blocking; call it from a thread when an event loop is running."""
    command.upgrade(alembic_config(dsn, runtime_role), revision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("COACHOPS_MIGRATION_DSN"))
    parser.add_argument("--runtime-role", default="coachops_runtime")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set COACHOPS_MIGRATION_DSN (the schema owner's DSN)")
    upgrade(args.dsn, args.revision, args.runtime_role)


if __name__ == "__main__":
    main()
