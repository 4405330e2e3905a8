"""Tenant provisioning in PostgreSQL, against the real server: exact text, one role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from coachops_crds.rls import CONTEXT_GROUP, TENANT_GROUP
from coachops_operator.database import Database, TenantRow
from tests.conftest import Database as StackDatabase

HOSTILE = "O'Brien \\' $$ $provision$ '); DROP TABLE creators; -- \\x00 ünï"


@pytest.fixture
async def operator_db(database: StackDatabase) -> AsyncIterator[Database]:
    db = Database(database.owner_dsn, pool_size=2)
    yield db
    await db.close()


async def test_provisioning_keeps_hostile_text_exact_and_is_repeatable(
    operator_db: Database, database: StackDatabase, unique_name: Callable[[str], str]
) -> None:
    role = unique_name("coachops_t_")
    tenant = uuid.uuid4()
    row = TenantRow(
        tenant, "hostile", HOSTILE, "o'brien@example.com", {"name": HOSTILE}, "shared", False, 1
    )
    superuser = await asyncpg.connect(database.superuser_dsn)
    try:
        for _ in range(2):  # the second pass changes nothing and fails nothing
            await operator_db.provision(row, role, "a long random password")
        found = await superuser.fetchrow(
            "SELECT display_name, contact_email, plan->>'name' AS plan FROM creators"
            " WHERE creator_id = $1",
            tenant,
        )
        assert found is not None
        assert (found["display_name"], found["contact_email"], found["plan"]) == (
            HOSTILE,
            "o'brien@example.com",
            HOSTILE,
        )
        bound = await superuser.fetchval(
            "SELECT creator_id FROM tenant_db_roles WHERE role_name = $1", role
        )
        assert bound == tenant
        can_login, in_tenants, in_context = await superuser.fetchrow(
            "SELECT rolcanlogin, pg_has_role(rolname, $2, 'MEMBER'),"
            " pg_has_role(rolname, $3, 'MEMBER') FROM pg_roles WHERE rolname = $1",
            role,
            TENANT_GROUP,
            CONTEXT_GROUP,
        )
        assert (can_login, in_tenants, in_context) == (True, True, False)
        # The password works: the role logs in with it.
        dsn = database.owner_dsn.replace(
            database.owner_dsn.split("//", 1)[1].split("@", 1)[0],
            f"{role}:a%20long%20random%20password",
        )
        tenant_conn = await asyncpg.connect(dsn)
        await tenant_conn.close()
    finally:
        await superuser.execute(f'DROP OWNED BY "{role}"; DROP ROLE IF EXISTS "{role}"')
        await superuser.close()
