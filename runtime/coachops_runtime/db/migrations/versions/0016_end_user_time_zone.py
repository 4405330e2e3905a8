"""An end user's time zone may be unset: ``end_users.time_zone`` becomes nullable with no
default.

NULL means "not set": the proactive engine and the prompts then use the program's
``spec.proactive.timeZone``, else UTC. Rows written before this migration keep their value
('UTC' included): a zone given as UTC and one left to the old default cannot be told apart.
The trigger that re-plans an end user's schedules on a zone change (0010) compares with
``IS DISTINCT FROM``, so setting or clearing the zone (NULL <-> a name) fires it too.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE end_users ALTER COLUMN time_zone DROP NOT NULL,"
        " ALTER COLUMN time_zone DROP DEFAULT"
    )


def downgrade() -> None:
    # Zones left unset become UTC, the column's old default (the program's zone is lost).
    op.execute("UPDATE end_users SET time_zone = 'UTC' WHERE time_zone IS NULL")
    op.execute(
        "ALTER TABLE end_users ALTER COLUMN time_zone SET DEFAULT 'UTC',"
        " ALTER COLUMN time_zone SET NOT NULL"
    )
