"""Provider credentials: the API key of a program's model provider, copied encrypted.

``spec.model.apiKeySecretRef`` names a Secret in the program's namespace holding the key
under ``api-key``. As with channel credentials (0006), the runtime never reads Secrets: the
operator copies the key into ``provider_credentials``, encrypted with the platform's
credentials key (Fernet, ``COACHOPS_CHANNEL_KEY``), with a SHA-256 of the value so that a
rotated Secret is copied again. One row per program. A tenant table: forced RLS, the two
tenant policies; the runtime and tenant roles may only read it, the operator (the owner)
writes it.

Revision ID: 0014
Revises: 0013
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE provider_credentials (
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            secret_name text NOT NULL,
            secret_hash text NOT NULL,
            ciphertext bytea NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (creator_id, program_id),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table("provider_credentials", runtime_role, privileges="SELECT"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE provider_credentials")
