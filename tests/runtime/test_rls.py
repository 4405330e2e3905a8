"""Row-level security is the wall: raw SQL as the runtime role, and the startup guard."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr, ValidationError

from coachops_crds import rls
from coachops_devstack.stack import Stack
from coachops_runtime.app import create_app
from coachops_runtime.db.migrate import upgrade
from coachops_runtime.kit.db import UnsafeDatabaseRoleError
from coachops_runtime.kit.settings import Settings
from tests.conftest import Database
from tests.runtime.conftest import Tenants
from tests.runtime.test_cross_tenant import build

# Tenant tables are read from the database, not listed: every table with forced row-level
# security (test_every_table_with_tenant_rows_is_walled shows no tenant data escapes that).
_TENANT_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND c.relrowsecurity AND c.relforcerowsecurity
ORDER BY 1
"""
# What the API-built worlds write, so each shows rows once its tenant is bound; the other
# tenant tables fill from the operator, the workers or webhooks.
POPULATED = [
    "creators",
    "programs",
    "creator_accounts",
    "action_tokens",
    "email_outbox",
    "api_keys",
    "end_users",
    "enrolments",
    "conversations",
    "messages",
    "knowledge_documents",
    "goals",
]


async def tenant_tables(conn: asyncpg.Connection) -> list[str]:
    return [row["relname"] for row in await conn.fetch(_TENANT_TABLES)]


async def _counts(conn: asyncpg.Connection, tables: list[str]) -> dict[str, int]:
    return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}


async def test_every_table_with_tenant_rows_is_walled(database: Database) -> None:
    """A table with a creator_id column has forced RLS, or the runtime role may not touch
    it at all (directories and queues, read through SECURITY DEFINER functions)."""
    conn = await asyncpg.connect(database.superuser_dsn)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity AS walled,"
            " has_table_privilege('coachops_runtime', c.oid, 'SELECT, INSERT, UPDATE, DELETE')"
            "   AS runtime_may"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'creator_id'"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT a.attisdropped"
        )
        tables = await tenant_tables(conn)
    finally:
        await conn.close()
    assert set(POPULATED) <= set(tables)
    open_to_runtime = [r["relname"] for r in rows if not r["walled"] and r["runtime_may"]]
    assert open_to_runtime == []


async def test_raw_sql_without_tenant_sees_nothing_and_with_a_never_b(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    a = await build(client, tenants, "north")
    b = await build(client, tenants, "south")
    conn = await asyncpg.connect(database.runtime_dsn)
    try:
        tables = await tenant_tables(conn)
        assert set(POPULATED) <= set(tables)
        assert set((await _counts(conn, tables)).values()) == {0}
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('coachops.tenant_id', $1, true)", str(a.creator.creator_id)
            )
            counts = await _counts(conn, tables)
            assert all(counts[t] >= 1 for t in POPULATED), counts
            for table in tables:
                others = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE creator_id <> $1", a.creator.creator_id
                )
                assert others == 0, table
            # Writing into B's tenant is refused by the policy's WITH CHECK.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "INSERT INTO end_users (creator_id, email) VALUES ($1, 'x@example.com')",
                    b.creator.creator_id,
                )
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('coachops.tenant_id', $1, true)", str(a.creator.creator_id)
            )
            # Updates and deletes cannot reach B's rows either.
            assert await conn.execute("UPDATE end_users SET display_name = 'x'") == "UPDATE 1"
            assert (
                await conn.execute(
                    "DELETE FROM enrolments WHERE creator_id = $1", b.creator.creator_id
                )
                == "DELETE 0"
            )
            # A row cannot point at B's rows even by id (tenant-carrying foreign keys).
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(
                    "INSERT INTO enrolments (creator_id, end_user_id, program_id)"
                    " VALUES ($1, $2, $3)",
                    a.creator.creator_id,
                    a.end_user,
                    b.program,
                )
        # The directories are not readable directly.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM login_directory")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM tenant_directory")
        # SET LOCAL ended with the transaction.
        assert set((await _counts(conn, tables)).values()) == {0}
    finally:
        await conn.close()


@pytest.mark.parametrize("dsn_kind", ["owner_dsn", "superuser_dsn"])
async def test_runtime_refuses_roles_that_bypass_rls(
    database: Database, runtime_settings: Settings, dsn_kind: str
) -> None:
    settings = runtime_settings.model_copy(
        update={"database_url": SecretStr(getattr(database, dsn_kind))}
    )
    app = create_app(settings)
    with pytest.raises(UnsafeDatabaseRoleError, match="refusing to start"):
        async with app.router.lifespan_context(app):
            pass


async def test_runtime_refuses_a_role_outside_the_tenant_context_group(
    database: Database, runtime_settings: Settings, stack: Stack
) -> None:
    """A role no tenant policy applies to would answer every request with nothing."""
    role, password = f"norls_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = await asyncpg.connect(database.superuser_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        settings = runtime_settings.model_copy(
            update={
                "database_url": SecretStr(stack.postgres.dsn_for(database.name, role, password))
            }
        )
        app = create_app(settings)
        with pytest.raises(UnsafeDatabaseRoleError, match=f"not a member of {rls.CONTEXT_GROUP}"):
            async with app.router.lifespan_context(app):
                pass
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


def test_production_refuses_default_secrets(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="refusing to start"):
        Settings(
            environment="production",
            database_url="postgresql://coachops_runtime@db/coachops",
            redis_url="redis://redis:6379/0",
            jwt_keys_dir=tmp_path,
        )
    with pytest.raises(ValidationError, match="COACHOPS_DATABASE_URL"):
        Settings(
            environment="production",
            database_url="postgresql://coachops_runtime:changethis@db/coachops",
            redis_url="redis://:s3cr3t-redis@redis:6379/0",
            jwt_keys_dir=tmp_path,
        )
    # Development accepts them (with a generated signing key).
    Settings(environment="development", database_url="postgresql://u@localhost/db")


async def test_no_connection_is_left_inside_a_transaction(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    """Failed requests roll back; nothing returns to the pool with a tenant still bound."""
    world = await build(client, tenants, "pooled")
    for _ in range(5):
        missing = await client.get(f"/v1/end-users/{uuid.uuid4()}", headers=world.creator.headers)
        assert missing.status_code == 404
        duplicate = await client.post(
            "/v1/end-users", json={"email": world.email}, headers=world.creator.headers
        )
        assert duplicate.status_code == 409
        assert (
            await client.get("/v1/creator", headers={"Authorization": "Bearer x"})
        ).status_code == 401
    admin = await asyncpg.connect(database.superuser_dsn)
    try:
        stuck = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'coachops_runtime'"
            " AND datname = current_database() AND state LIKE 'idle in transaction%'"
        )
    finally:
        await admin.close()
    assert stuck == 0


async def test_migration_0003_replaces_the_legacy_single_policy(stack: Stack) -> None:
    """A database migrated before 0003 (one function-based policy for every role) ends up
    with exactly the per-role policies of coachops_crds.rls on every tenant table."""
    pg = stack.postgres
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg.dsn_for("postgres"))
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 OWNER coachops_owner")
    owner_dsn = pg.dsn_for(name, "coachops_owner", pg.owner_password)
    try:
        await asyncio.to_thread(upgrade, owner_dsn, "0002")
        owner = await asyncpg.connect(owner_dsn)
        try:
            for table in await tenant_tables(owner):  # those of 0002
                for policy in rls.POLICIES:
                    await owner.execute(f"DROP POLICY {policy.name} ON {table}")
                await owner.execute(
                    f"CREATE POLICY tenant_isolation ON {table}"
                    " USING (creator_id = (SELECT current_tenant_id()))"
                )
        finally:
            await owner.close()
        await asyncio.to_thread(upgrade, owner_dsn)
        superuser = await asyncpg.connect(pg.dsn_for(name))
        try:
            rows = await superuser.fetch(
                "SELECT tablename, policyname, roles, qual FROM pg_policies"
                " WHERE schemaname = 'public'"
            )
            tables = await tenant_tables(superuser)
        finally:
            await superuser.close()
        found = {(r["tablename"], r["policyname"], tuple(r["roles"]), r["qual"]) for r in rows}
        assert found == {
            (table, policy.name, (policy.role,), policy.canonical)
            for table in tables
            for policy in rls.POLICIES
        }
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
