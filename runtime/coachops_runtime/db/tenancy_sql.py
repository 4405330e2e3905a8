"""SQL that makes a table a tenant table: row-level security bound to the tenant context.

The tenant context is ``current_tenant_id()`` (migration 0001):

* roles listed in ``tenant_context_roles`` (the shared runtime and the schema owner) name
  the tenant per transaction with ``SET LOCAL coachops.tenant_id = '<uuid>'``;
* every other role gets the tenant bound to it in ``tenant_db_roles`` (the per-creator
  login roles of dedicated runtimes), whatever it sets, or none at all;
* no context means NULL, and ``creator_id = NULL`` admits no row: fail closed.
"""

from __future__ import annotations

TENANT_GROUP = "coachops_tenants"


def tenant_table(table: str, runtime_role: str, *, privileges: str) -> list[str]:
    """Statements that enable and force RLS on ``table`` and grant ``privileges``."""
    # (SELECT ...) makes PostgreSQL evaluate the function once per query, not per row.
    predicate = "creator_id = (SELECT current_tenant_id())"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})",
        f"GRANT {privileges} ON {table} TO {runtime_role}, {TENANT_GROUP}",
    ]
