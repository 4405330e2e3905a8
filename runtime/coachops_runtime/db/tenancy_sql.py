"""SQL that makes a table a tenant table: forced row-level security and the tenant policies.

The policies themselves (one per kind of role, see ``coachops_crds.rls``) are shared with
the operator, which repairs them when they drift.
"""

from __future__ import annotations

from coachops_crds.rls import CONTEXT_GROUP, POLICIES, TENANT_GROUP

__all__ = ["CONTEXT_GROUP", "TENANT_GROUP", "ensure_group", "tenant_policies", "tenant_table"]


def tenant_table(table: str, runtime_role: str, *, privileges: str) -> list[str]:
    """Statements that enable and force RLS on ``table``, add its policies and grant
    ``privileges``. Until the policies exist the table shows no row to anyone."""
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        *tenant_policies(table),
        f"GRANT {privileges} ON {table} TO {runtime_role}, {TENANT_GROUP}",
    ]


def tenant_policies(table: str) -> list[str]:
    return [policy.create(table) for policy in POLICIES]


def ensure_group(group: str) -> str:
    """A NOLOGIN group role, created unless it exists (roles belong to the cluster)."""
    return f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{group}') THEN
            CREATE ROLE {group} NOLOGIN;
          END IF;
        END $$
    """
