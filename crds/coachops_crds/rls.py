"""The row-level security policies every tenant table carries.

The runtime's migrations create them and the operator repairs them when they drift, so
both read them from here. PostgreSQL picks the policy by role, which keeps each one a
single cheap comparison:

* ``tenant_context`` applies to members of ``coachops_tenant_context`` (the shared runtime
  and the schema owner): they name the tenant per transaction with ``SET LOCAL
  coachops.tenant_id``, and the predicate reads that setting directly;
* ``tenant_binding`` applies to members of ``coachops_tenants`` (the per-creator login
  roles of dedicated runtimes): ``current_tenant_id()`` returns the tenant bound to the
  session's role in ``tenant_db_roles``, whatever the role sets;
* any other role matches no policy and sees no row: fail closed. No setting also means no
  row, because ``creator_id = NULL`` is never true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

TENANT_GROUP: Final = "coachops_tenants"
CONTEXT_GROUP: Final = "coachops_tenant_context"
TENANT_SETTING: Final = "coachops.tenant_id"


@dataclass(frozen=True)
class Policy:
    name: str
    role: str
    predicate: str
    # What pg_get_expr() prints for ``predicate``: the form the drift check compares.
    canonical: str

    def create(self, table: str) -> str:
        return (
            f"CREATE POLICY {self.name} ON {table} TO {self.role}"
            f" USING ({self.predicate}) WITH CHECK ({self.predicate})"
        )


# (SELECT ...) makes PostgreSQL evaluate the tenant once per statement, not once per row.
POLICIES: Final = (
    Policy(
        name="tenant_context",
        role=CONTEXT_GROUP,
        predicate=(
            f"creator_id = (SELECT nullif(current_setting('{TENANT_SETTING}', true), '')::uuid)"
        ),
        canonical=(
            f"(creator_id = ( SELECT (NULLIF(current_setting('{TENANT_SETTING}'::text, true),"
            " ''::text))::uuid AS \"nullif\"))"
        ),
    ),
    Policy(
        name="tenant_binding",
        role=TENANT_GROUP,
        predicate="creator_id = (SELECT current_tenant_id())",
        canonical="(creator_id = ( SELECT current_tenant_id() AS current_tenant_id))",
    ),
)
