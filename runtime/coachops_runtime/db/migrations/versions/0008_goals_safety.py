"""Goals of end users, and the safety events the creator is shown.

Both are tenant tables (forced RLS, the two tenant policies); their foreign keys carry the
tenant, so no row can point at another tenant's end user, program or conversation.

``goals``: one row per goal of an end user in a program. ``status`` is 'active' until the
goal is closed as 'achieved' or 'abandoned' (``closed_at``); ``created_by`` says who set it.

``safety_events``: one row per inbound message the safety check did not pass ('crisis'
with its category, or 'blocked_topic' with the creator's topic), the layer that caught it,
whether the AI was paused and the alert e-mail queued. It holds no message text. A
message has at most one event (unique ``message_id``), so a reply job that runs again
after a crash records nothing twice.

Revision ID: 0008
Revises: 0007
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE goals (
            goal_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            end_user_id uuid NOT NULL,
            program_id uuid NOT NULL,
            title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
            details text NOT NULL DEFAULT '' CHECK (length(details) <= 2000),
            target_date date,
            status text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'achieved', 'abandoned')),
            created_by text NOT NULL CHECK (created_by IN ('end_user', 'creator')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            closed_at timestamptz,
            CHECK ((status = 'active') = (closed_at IS NULL)),
            FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
                ON DELETE CASCADE,
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table("goals", runtime_role, privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)
    op.execute(
        "CREATE INDEX goals_end_user ON goals (creator_id, end_user_id, created_at, goal_id)"
    )
    op.execute(
        """
        CREATE TABLE safety_events (
            event_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            end_user_id uuid NOT NULL,
            conversation_id uuid NOT NULL,
            message_id bigint UNIQUE,
            kind text NOT NULL CHECK (kind IN ('crisis', 'blocked_topic')),
            category text
                CHECK (category IN ('self_harm', 'abuse', 'medical_emergency')),
            topic text,
            layer text NOT NULL CHECK (layer IN ('pattern', 'embedding')),
            score real,
            ai_paused boolean NOT NULL,
            alert_queued boolean NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((kind = 'crisis') = (category IS NOT NULL)),
            CHECK ((kind = 'blocked_topic') = (topic IS NOT NULL)),
            FOREIGN KEY (creator_id, conversation_id)
                REFERENCES conversations (creator_id, conversation_id) ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table("safety_events", runtime_role, privileges="SELECT, INSERT"):
        op.execute(statement)
    op.execute(
        "CREATE INDEX safety_events_page"
        " ON safety_events (creator_id, created_at DESC, event_id DESC)"
    )
    op.execute(
        "CREATE INDEX safety_events_conversation ON safety_events (creator_id, conversation_id)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE safety_events")
    op.execute("DROP TABLE goals")
