"""Channel credentials: each enabled channel's Secret, copied by the operator, encrypted.

The runtime must never read Secrets across the cluster, so the operator copies the keys a
channel needs from the program's ``secretRef`` Secret into ``channel_credentials``,
encrypted with the platform's channel key (Fernet; ``COACHOPS_CHANNEL_KEY``, read by the
operator and the runtime). ``secret_hash`` is a SHA-256 over the Secret's copied keys and
values: the operator re-copies when it differs, which is how a rotated Secret reaches the
runtime. A tenant table: forced RLS, the two tenant policies; the runtime and tenant roles
may only read it, the operator (the owner) writes it.

Revision ID: 0006
Revises: 0005
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE channel_credentials (
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            channel text NOT NULL
                CHECK (channel IN ('telegram', 'whatsapp', 'sms', 'email', 'slack')),
            secret_name text NOT NULL,
            secret_hash text NOT NULL,
            ciphertext bytea NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (creator_id, program_id, channel),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table("channel_credentials", runtime_role, privileges="SELECT"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE channel_credentials")
