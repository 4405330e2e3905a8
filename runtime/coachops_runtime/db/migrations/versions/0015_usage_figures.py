"""AI usage in the daily analytics: replies and their tokens in the kept figures.

``/v1/analytics/daily`` reports per program and day the AI replies and their prompt and
completion tokens. The figures the retention purge keeps for purged days
(``message_days``) and those an erasure keeps of the erased person's messages
(``erased_activity``) gain the same three columns, so a purge or an erasure does not
change a past day's usage either. Rows kept before this migration count 0 there.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"

_TABLES = ("message_days", "erased_activity")


def upgrade() -> None:
    for table in _TABLES:
        op.execute(
            f"""
            ALTER TABLE {table}
                ADD COLUMN ai_replies integer NOT NULL DEFAULT 0,
                ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0,
                ADD COLUMN completion_tokens bigint NOT NULL DEFAULT 0
            """
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(
            f"ALTER TABLE {table} DROP COLUMN ai_replies, DROP COLUMN prompt_tokens,"
            " DROP COLUMN completion_tokens"
        )
