"""PostgreSQL provisioning: tenant rows, per-creator login roles, RLS checks and the probe.

The operator connects as the schema owner (``coachops_owner``): it owns the tables, may
create roles, and is subject to FORCE ROW LEVEL SECURITY like everyone else, so every
write names its tenant first with ``set_config('coachops.tenant_id', ..., true)``.

Passwords never travel to the server in clear: roles get a SCRAM-SHA-256 verifier computed
here, so no statement the server could log or echo in an error carries a password.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from coachops_crds.rls import CONTEXT_GROUP, POLICIES, TENANT_GROUP
from coachops_operator import fence

CANARY_NAME = "_coachops_probe_canary"
CANARY_ID = uuid.UUID("00000000-0000-4000-8000-00000000c0de")

# Tenant tables: creators and every table with a foreign key on creator_id to it.
_TENANT_TABLES = """
    SELECT 'public.creators'::regclass AS rel
    UNION
    SELECT con.conrelid FROM pg_constraint con
    JOIN pg_attribute a ON a.attrelid = con.conrelid
        AND a.attnum = ANY (con.conkey) AND a.attname = 'creator_id'
    WHERE con.contype = 'f' AND con.confrelid = 'public.creators'::regclass
"""

STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


# PBKDF2 rounds of a tenant role's verifier. Key stretching protects passwords a person
# chose; a tenant's password is 192 random bits (secrets.token_urlsafe(24)), which no
# number of rounds makes harder to guess. PostgreSQL's 4,096 rounds cost ~5 ms of CPU here,
# paid once in the operator when the role is created and again by every client connecting
# as the role (the isolation probe connects on each reconcile): ~10 ms per new Creator.
TENANT_ROLE_ITERATIONS = 256


def scram_verifier(password: str, iterations: int = TENANT_ROLE_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _role_row_problems(found: Mapping[str, Any]) -> list[str]:
    role = found.get("rolname", "the tenant role")
    problems = []
    if not found["rolcanlogin"]:
        problems.append(f"database role {role} cannot log in")
    if found["rolsuper"] or found["rolbypassrls"] or found["rolcreaterole"]:
        problems.append(f"database role {role} has elevated attributes")
    if not found["member"]:
        problems.append(f"database role {role} is not in {TENANT_GROUP}")
    if found["context_member"]:
        problems.append(f"database role {role} may name any tenant (member of {CONTEXT_GROUP})")
    return problems


# A login role's attributes, group memberships and tenant binding (condition: which roles).
_ROLE_STATE = f"""
SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreaterole,
       pg_has_role(r.rolname, {quote_literal(TENANT_GROUP)}, 'MEMBER') AS member,
       pg_has_role(r.rolname, {quote_literal(CONTEXT_GROUP)}, 'MEMBER') AS context_member,
       b.creator_id AS bound
FROM pg_roles r LEFT JOIN tenant_db_roles b ON b.role_name = r.rolname
WHERE {{condition}}
"""


@dataclass(frozen=True)
class TenantRow:
    creator_id: uuid.UUID
    name: str
    display_name: str
    contact_email: str
    plan: Mapping[str, Any]
    isolation: str
    suspended: bool
    generation: int


async def _rollback_if_open(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


# Options of every tenant login role. Only a superuser may even mention SUPERUSER,
# REPLICATION or BYPASSRLS in ALTER ROLE; they are off by default at creation and
# role_problems() reports them.
_ROLE_OPTIONS = "LOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT 50"


def _tenant_row_sql(row: TenantRow) -> str:
    """The tenant row, inserted or brought up to date, under its own tenant context."""
    tenant = quote_literal(str(uuid.UUID(str(row.creator_id))))
    return f"""
SELECT set_config('coachops.tenant_id', {tenant}, true);
INSERT INTO creators (creator_id, name, display_name, contact_email, plan, isolation,
                      suspended, generation)
VALUES ({tenant}, {quote_literal(row.name)}, {quote_literal(row.display_name)},
        {quote_literal(row.contact_email)},
        {quote_literal(json.dumps(row.plan, sort_keys=True))}::jsonb,
        {quote_literal(row.isolation)}, {"true" if row.suspended else "false"},
        {int(row.generation)})
ON CONFLICT (creator_id) DO UPDATE SET
    display_name = EXCLUDED.display_name,
    contact_email = EXCLUDED.contact_email,
    plan = EXCLUDED.plan,
    isolation = EXCLUDED.isolation,
    suspended = EXCLUDED.suspended,
    generation = EXCLUDED.generation,
    updated_at = now()
WHERE (creators.display_name, creators.contact_email, creators.plan,
       creators.isolation, creators.suspended, creators.generation)
   IS DISTINCT FROM
      (EXCLUDED.display_name, EXCLUDED.contact_email, EXCLUDED.plan,
       EXCLUDED.isolation, EXCLUDED.suspended, EXCLUDED.generation);
"""


def _provision_sql(row: TenantRow, role: str, verifier: str) -> str:
    """The tenant row, then the role: created (or its options repaired), in the tenant
    group, never in the context group (it could name any tenant), bound to its tenant."""
    tenant = quote_literal(str(uuid.UUID(str(row.creator_id))))
    name, ident = quote_literal(role), quote_ident(role)
    return (
        _tenant_row_sql(row)
        + f"""
DO $provision$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN
    ALTER ROLE {ident} {_ROLE_OPTIONS};
  ELSE
    CREATE ROLE {ident} {_ROLE_OPTIONS} PASSWORD {quote_literal(verifier)};
  END IF;
  IF NOT pg_has_role({name}, {quote_literal(TENANT_GROUP)}, 'MEMBER') THEN
    GRANT {quote_ident(TENANT_GROUP)} TO {ident};
  END IF;
  IF pg_has_role({name}, {quote_literal(CONTEXT_GROUP)}, 'MEMBER') THEN
    REVOKE {quote_ident(CONTEXT_GROUP)} FROM {ident};
  END IF;
END
$provision$;
INSERT INTO tenant_db_roles (role_name, creator_id) VALUES ({name}, {tenant})
ON CONFLICT (role_name) DO UPDATE SET creator_id = EXCLUDED.creator_id
WHERE tenant_db_roles.creator_id IS DISTINCT FROM EXCLUDED.creator_id;
"""
    )


class Database:
    """The operator's access to PostgreSQL as the schema owner."""

    def __init__(self, dsn: str, *, pool_size: int = 10, timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                # min_size=0: the operator starts even while PostgreSQL is down.
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=self._pool_size,
                    timeout=self.timeout,
                    command_timeout=self.timeout * 2,
                    max_inactive_connection_lifetime=60,
                    server_settings={"standard_conforming_strings": "on"},
                    # Statements here leave no session state (no SET, LISTEN, cursors or
                    # advisory locks): asyncpg's full reset would be one more round trip.
                    reset=_rollback_if_open,
                )
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; every statement of the operator runs on one of these."""
        pool = await self._get_pool()
        # Waiting for a pooled connection is queueing, not an outage: allow much longer
        # than the connect timeout before calling the database unavailable.
        async with pool.acquire(timeout=self.timeout * 6) as conn:
            fence.check()  # a leader that froze while it waited must not write when it wakes
            yield conn

    @asynccontextmanager
    async def transaction(self, tenant: uuid.UUID | None = None) -> AsyncIterator[Any]:
        """A connection in a transaction, with the tenant context set when given."""
        async with self._connection() as conn, conn.transaction():
            if tenant is not None:
                await conn.execute("SELECT set_config('coachops.tenant_id', $1, true)", str(tenant))
            yield conn

    # ------------------------------------------------------------ tenant rows

    async def provision(self, row: TenantRow, role: str, password: str) -> None:
        """The tenant row and its login role: one transaction in one round trip.

        A simple query of several statements runs as one transaction, so either all of
        it happens or none. Values are inlined as literals (the pool pins
        standard_conforming_strings, under which doubling quotes is exact quoting).
        """
        async with self._connection() as conn:
            await conn.execute(_provision_sql(row, role, scram_verifier(password)))

    async def tenant_state(self, tenant: uuid.UUID) -> tuple[bool, int] | None:
        """(suspended, generation) of the tenant row, or None if it is missing."""
        async with self.transaction(tenant) as conn:
            found = await conn.fetchrow(
                "SELECT suspended, generation FROM creators WHERE creator_id = $1", tenant
            )
        return None if found is None else (bool(found[0]), int(found[1]))

    async def ensure_canary(self) -> None:
        """A tenant row no role is bound to: the probe tries to read it and must not."""
        canary = _tenant_row_sql(
            TenantRow(
                CANARY_ID,
                CANARY_NAME,
                "probe canary",
                "canary@coachops.invalid",
                {},
                "shared",
                True,
                0,
            )
        )
        async with self._connection() as conn:
            await conn.execute(canary)  # one simple query: one transaction

    # ------------------------------------------------------------ login roles

    async def set_password(self, role: str, password: str) -> None:
        verifier = quote_literal(scram_verifier(password))
        async with self.transaction() as conn:
            await conn.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD {verifier}")

    async def _role_states(self, condition: str, value: str) -> list[Any]:
        async with self.transaction() as conn:
            rows: list[Any] = await conn.fetch(_ROLE_STATE.format(condition=condition), value)
        return rows

    async def role_problems(self, role: str, tenant: uuid.UUID) -> list[str]:
        """What is wrong with the tenant's role (empty when nothing is)."""
        rows = await self._role_states("r.rolname = $1", role)
        if not rows:
            return [f"database role {role} is missing"]
        problems = _role_row_problems(rows[0])
        if rows[0]["bound"] != tenant:
            problems.append(f"database role {role} is not bound to its tenant")
        return problems

    async def all_role_problems(self, prefix: str) -> dict[str, tuple[list[str], uuid.UUID | None]]:
        """role_problems() for every role whose name starts with ``prefix``, in one query."""
        rows = await self._role_states("starts_with(r.rolname, $1)", prefix)
        return {row["rolname"]: (_role_row_problems(row), row["bound"]) for row in rows}

    async def disable_role(self, role: str) -> None:
        async with self.transaction() as conn:
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f"ALTER ROLE {quote_ident(role)} NOLOGIN")

    async def drop_tenant(self, tenant: uuid.UUID, role: str) -> int:
        """Delete the tenant's rows (cascading to every tenant table) and drop its role."""
        async with self.transaction(tenant) as conn:
            deleted = await conn.fetchval(
                "WITH d AS (DELETE FROM creators WHERE creator_id = $1 RETURNING 1)"
                " SELECT count(*) FROM d",
                tenant,
            )
            await conn.execute("DELETE FROM tenant_db_roles WHERE role_name = $1", role)
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f"DROP ROLE {quote_ident(role)}")
        return int(deleted or 0)

    async def retain_tenant(self, tenant: uuid.UUID, role: str) -> None:
        """Keep the rows, stop serving them: the tenant is suspended and its role can't log in."""
        async with self.transaction(tenant) as conn:
            await conn.execute(
                "UPDATE creators SET suspended = true, updated_at = now() WHERE creator_id = $1",
                tenant,
            )
        await self.disable_role(role)

    # ------------------------------------------------------------ RLS policies

    async def policy_problems(self) -> list[str]:
        """Tenant tables whose row-level security is not exactly the tenant policies.

        Tenant tables are ``creators`` and every table with a foreign key on
        ``creator_id`` to it (directories and role bindings are not tenant tables).
        """
        async with self.transaction() as conn:
            rows = await conn.fetch(
                f"""
                WITH tenant_tables AS ({_TENANT_TABLES})
                SELECT t.rel::text AS name, c.relrowsecurity, c.relforcerowsecurity,
                       coalesce(jsonb_object_agg(p.polname,
                           jsonb_build_array(p.polcmd = '*' AND p.polpermissive,
                                             (SELECT array_agg(r.rolname::text) FROM pg_roles r
                                              WHERE r.oid = ANY (p.polroles)),
                                             pg_get_expr(p.polqual, p.polrelid),
                                             pg_get_expr(p.polwithcheck, p.polrelid)))
                                FILTER (WHERE p.polname IS NOT NULL), '{{}}') AS policies
                FROM tenant_tables t
                JOIN pg_class c ON c.oid = t.rel
                LEFT JOIN pg_policy p ON p.polrelid = t.rel
                GROUP BY t.rel, c.relrowsecurity, c.relforcerowsecurity
                """
            )
        want = {p.name: [True, [p.role], p.canonical, p.canonical] for p in POLICIES}
        problems = []
        for row in rows:
            name = row["name"]
            if not (row["relrowsecurity"] and row["relforcerowsecurity"]):
                problems.append(f"row-level security is not enabled and forced on {name}")
            live = json.loads(row["policies"])
            if sorted(live) != sorted(want):
                problems.append(f"{name} has policies {sorted(live)}, want {sorted(want)}")
                continue
            problems.extend(
                f"policy {policy} on {name} was altered"
                for policy in sorted(want)
                if live[policy] != want[policy]
            )
        return problems

    async def repair_policies(self) -> list[str]:
        """Put the tenant policies back on every tenant table; returns what was repaired."""
        problems = await self.policy_problems()
        if not problems:
            return []
        async with self.transaction() as conn:
            tables = await conn.fetch(
                f"SELECT DISTINCT rel::text AS name FROM ({_TENANT_TABLES}) t"
            )
            for table in tables:
                name = table["name"]
                policies = await conn.fetch(
                    "SELECT polname::text AS polname FROM pg_policy WHERE polrelid = $1::regclass",
                    name,
                )
                for policy in policies:
                    await conn.execute(f"DROP POLICY {quote_ident(policy['polname'])} ON {name}")
                await conn.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
                await conn.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
                for policy in POLICIES:
                    await conn.execute(policy.create(name))
        return problems

    # ------------------------------------------------------------ programs

    async def upsert_program(
        self,
        tenant: uuid.UUID,
        program: uuid.UUID,
        name: str,
        title: str,
        spec: Mapping[str, Any],
        generation: int,
        channels: list[str],
    ) -> None:
        """Copy the program; in the same transaction, delete the credentials of every
        channel not in ``channels`` (disabled or removed)."""
        async with self.transaction(tenant) as conn:
            await conn.execute(
                "DELETE FROM channel_credentials WHERE program_id = $1 AND channel <> ALL($2)",
                program,
                channels,
            )
            await conn.execute(
                """
                INSERT INTO programs (program_id, creator_id, name, title, spec, generation)
                VALUES ($1, $2, $3, $4, $5::jsonb, $6)
                ON CONFLICT (program_id) DO UPDATE SET
                    title = EXCLUDED.title, spec = EXCLUDED.spec,
                    generation = EXCLUDED.generation, deleted_at = NULL, updated_at = now()
                WHERE (programs.title, programs.spec, programs.generation,
                       programs.deleted_at IS NULL)
                   IS DISTINCT FROM
                      (EXCLUDED.title, EXCLUDED.spec, EXCLUDED.generation, true)
                """,
                program,
                tenant,
                name,
                title,
                json.dumps(spec, sort_keys=True),
                generation,
            )

    async def program_generation(self, tenant: uuid.UUID, program: uuid.UUID) -> int | None:
        async with self.transaction(tenant) as conn:
            found = await conn.fetchval(
                "SELECT generation FROM programs WHERE program_id = $1 AND deleted_at IS NULL",
                program,
            )
        return None if found is None else int(found)

    async def remove_program(self, tenant: uuid.UUID, program: uuid.UUID, *, keep: bool) -> None:
        async with self.transaction(tenant) as conn:
            if keep:
                await conn.execute(
                    "UPDATE programs SET deleted_at = now() WHERE program_id = $1", program
                )
            else:
                await conn.execute("DELETE FROM programs WHERE program_id = $1", program)
            # Credentials never outlive the program, whatever the reclaim policy keeps.
            await conn.execute("DELETE FROM channel_credentials WHERE program_id = $1", program)
            await conn.execute("DELETE FROM provider_credentials WHERE program_id = $1", program)

    async def channel_hash(self, tenant: uuid.UUID, program: uuid.UUID, channel: str) -> str | None:
        async with self.transaction(tenant) as conn:
            found = await conn.fetchval(
                "SELECT secret_hash FROM channel_credentials"
                " WHERE program_id = $1 AND channel = $2",
                program,
                channel,
            )
        return None if found is None else str(found)

    async def upsert_channel_credentials(
        self,
        tenant: uuid.UUID,
        program: uuid.UUID,
        channel: str,
        secret_name: str,
        secret_hash: str,
        ciphertext: bytes,
    ) -> None:
        async with self.transaction(tenant) as conn:
            await conn.execute(
                """
                INSERT INTO channel_credentials
                    (creator_id, program_id, channel, secret_name, secret_hash, ciphertext)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (creator_id, program_id, channel) DO UPDATE SET
                    secret_name = EXCLUDED.secret_name, secret_hash = EXCLUDED.secret_hash,
                    ciphertext = EXCLUDED.ciphertext, updated_at = now()
                """,
                tenant,
                program,
                channel,
                secret_name,
                secret_hash,
                ciphertext,
            )

    async def provider_hash(self, tenant: uuid.UUID, program: uuid.UUID) -> str | None:
        async with self.transaction(tenant) as conn:
            found = await conn.fetchval(
                "SELECT secret_hash FROM provider_credentials WHERE program_id = $1", program
            )
        return None if found is None else str(found)

    async def upsert_provider_credentials(
        self,
        tenant: uuid.UUID,
        program: uuid.UUID,
        secret_name: str,
        secret_hash: str,
        ciphertext: bytes,
    ) -> None:
        async with self.transaction(tenant) as conn:
            await conn.execute(
                """
                INSERT INTO provider_credentials
                    (creator_id, program_id, secret_name, secret_hash, ciphertext)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (creator_id, program_id) DO UPDATE SET
                    secret_name = EXCLUDED.secret_name, secret_hash = EXCLUDED.secret_hash,
                    ciphertext = EXCLUDED.ciphertext, updated_at = now()
                """,
                tenant,
                program,
                secret_name,
                secret_hash,
                ciphertext,
            )

    async def delete_provider_credentials(self, tenant: uuid.UUID, program: uuid.UUID) -> None:
        async with self.transaction(tenant) as conn:
            await conn.execute("DELETE FROM provider_credentials WHERE program_id = $1", program)


# ---------------------------------------------------------------- verification probe


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str


_PROBE = """
BEGIN;
DO $probe$
DECLARE
  own uuid := current_tenant_id();
  foreign_rows bigint;
  own_rows bigint;
  affected bigint;
BEGIN
  IF own IS DISTINCT FROM '{tenant}'::uuid THEN
    RAISE EXCEPTION 'coachops-probe: the role is not bound to its own tenant';
  END IF;
  -- Try to rebind to the canary tenant, then read everything.
  PERFORM set_config('coachops.tenant_id', '{canary}', true);
  SELECT count(*) FILTER (WHERE creator_id <> own), count(*) FILTER (WHERE creator_id = own)
    INTO foreign_rows, own_rows FROM creators;
  IF foreign_rows > 0 THEN
    RAISE EXCEPTION 'coachops-probe: read % row(s) of other tenants', foreign_rows;
  END IF;
  IF own_rows = 0 THEN
    RAISE EXCEPTION 'coachops-probe: cannot read its own tenant row';
  END IF;
  -- Every write to another tenant or to the role bindings must be refused
  -- (insufficient_privilege covers missing grants and row-level security alike).
  BEGIN
    INSERT INTO programs (program_id, creator_id, name, title, spec)
      VALUES (gen_random_uuid(), '{canary}', 'probe', 'probe', '{{}}');
    RAISE EXCEPTION 'coachops-probe: an insert into another tenant succeeded';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
  BEGIN
    UPDATE creators SET display_name = 'probe' WHERE creator_id = '{canary}';
    GET DIAGNOSTICS affected = ROW_COUNT;
    IF affected > 0 THEN
      RAISE EXCEPTION 'coachops-probe: an update of another tenant succeeded';
    END IF;
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
  BEGIN
    DELETE FROM creators WHERE creator_id = '{canary}';
    GET DIAGNOSTICS affected = ROW_COUNT;
    IF affected > 0 THEN
      RAISE EXCEPTION 'coachops-probe: a delete of another tenant succeeded';
    END IF;
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
  BEGIN
    INSERT INTO tenant_db_roles (role_name, creator_id) VALUES (current_user, '{canary}');
    RAISE EXCEPTION 'coachops-probe: the role could rebind itself';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END
$probe$;
ROLLBACK;
"""


async def probe_isolation(
    dsn: str, tenant: uuid.UUID, *, connect_timeout: float = 5.0
) -> ProbeResult:
    """Connect as the tenant's role and try to escape: read, write and rebind.

    One round trip: a PL/pgSQL block, run as the tenant's role in a transaction that is
    rolled back, expects to see exactly its own tenant row, nothing of the canary tenant,
    and every write to another tenant (or to the role bindings) refused.
    """
    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    fence.check()
    try:
        await conn.execute(_PROBE.format(tenant=uuid.UUID(str(tenant)), canary=CANARY_ID))
    except asyncpg.RaiseError as error:
        message = str(error).removeprefix("coachops-probe: ")
        return ProbeResult(False, message)
    finally:
        await conn.close()
    return ProbeResult(
        True,
        "probe as the tenant role: 0 foreign rows visible, 4/4 cross-tenant writes refused, "
        "rebinding ignored",
    )
