"""Tenant policies per kind of role: the shared runtime reads its SET LOCAL directly.

Databases created before this revision carry one policy, ``tenant_isolation``, whose
predicate calls ``current_tenant_id()`` (a SECURITY DEFINER PL/pgSQL function) for every
role. This revision replaces it with the two policies of ``coachops_crds.rls``, so the
runtime's statements compare against a setting instead of calling a function. Databases
created at this revision already have them; then there is nothing to do.

Revision ID: 0003
Revises: 0002
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import CONTEXT_GROUP, ensure_group, tenant_policies

revision = "0003"
down_revision = "0002"

_LEGACY_TABLES = """
    SELECT c.oid::regclass::text AS name FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
    WHERE p.polname = 'tenant_isolation'
"""


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(ensure_group(CONTEXT_GROUP))
    op.execute(f"GRANT {CONTEXT_GROUP} TO current_user, {runtime_role}")
    tables = [row[0] for row in op.get_bind().exec_driver_sql(_LEGACY_TABLES)]
    for table in tables:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        for statement in tenant_policies(table):
            op.execute(statement)


def downgrade() -> None:
    # The per-role policies enforce the same isolation; nothing to undo.
    pass
