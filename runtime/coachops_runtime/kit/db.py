"""The database: one pool, one transaction per request, the tenant set with SET LOCAL.

Every request transaction names its tenant with ``set_config('coachops.tenant_id', id,
true)`` (the function form of ``SET LOCAL``) before its first query, so a request without a
resolved tenant sees zero rows: row-level security is the wall, not a filter.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from coachops_crds.rls import CONTEXT_GROUP, TENANT_GROUP
from coachops_runtime.kit.context import tenant_id_var
from coachops_runtime.kit.settings import Settings

_SET_TENANT = "SELECT set_config('coachops.tenant_id', $1, true)"


async def bind_tenant(connection: Any, tenant_id: uuid.UUID) -> None:
    """Bind the transaction open on ``connection`` to one tenant (it ends with the
    transaction) and name the tenant in the task's log context."""
    await connection.execute(_SET_TENANT, str(tenant_id))
    tenant_id_var.set(str(tenant_id))


class UnsafeDatabaseRoleError(RuntimeError):
    """The runtime's database role could bypass row-level security."""


def create_engine(settings: Settings) -> AsyncEngine:
    """SQLAlchemy's engine, for the start-up role check (requests use ``create_pool``)."""
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=1,
        max_overflow=1,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "coachops-runtime"}},
    )


IntegrityError = asyncpg.IntegrityConstraintViolationError


class Session:
    """One request's transaction: the tenant context and the statements of repositories.

    SQLAlchemy owns the engine and its pool; the statements of a request run on the pooled
    asyncpg connection with asyncpg's prepared-statement cache (SQLAlchemy's Core execution
    layer cost 0.3-0.45 ms of CPU per statement, the largest item of a request's budget).
    The transaction begins with the first statement; when that is the tenant binding, BEGIN
    and ``set_config`` travel in one round trip. Repositories are the only callers of
    ``execute``/``one_or_none``/``all``/``scalar``; their statements are asyncpg's own SQL
    with ``$1, $2, ...`` parameters, passed to PostgreSQL unchanged (nothing here parses or
    rewrites SQL).
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.tenant_id: uuid.UUID | None = None
        self._begun = False
        self._savepoints = 0

    async def _ensure_begun(self) -> None:
        if not self._begun:
            await self.connection.execute("BEGIN")
            self._begun = True

    async def set_tenant(self, tenant_id: uuid.UUID) -> None:
        """Bind the transaction to one tenant (``SET LOCAL``); it ends with the transaction."""
        # The canonical form, safe to inline below (a UUID's str() already is).
        tenant = str(tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id)))
        if self._begun:
            await self.connection.execute(_SET_TENANT, tenant)
        else:
            await self.connection.execute(
                f"BEGIN; SELECT set_config('coachops.tenant_id', '{tenant}', true)"
            )
            self._begun = True
        self.tenant_id = tenant_id
        tenant_id_var.set(tenant)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """``async with session.savepoint():`` rolls back only its block on error."""
        await self._ensure_begun()
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        await self.connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        await self.connection.execute(f"RELEASE SAVEPOINT {name}")

    async def finish(self, *, commit: bool) -> None:
        if self._begun:
            self._begun = False
            await self.connection.execute("COMMIT" if commit else "ROLLBACK")

    async def execute(self, sql: str, *args: Any) -> str:
        await self._ensure_begun()
        status: str = await self.connection.execute(sql, *args)
        return status

    async def one_or_none(self, sql: str, *args: Any) -> Any | None:
        await self._ensure_begun()
        return await self.connection.fetchrow(sql, *args)

    async def all(self, sql: str, *args: Any) -> list[Any]:
        await self._ensure_begun()
        return list(await self.connection.fetch(sql, *args))

    async def scalar(self, sql: str, *args: Any) -> Any:
        await self._ensure_begun()
        return await self.connection.fetchval(sql, *args)


async def _rollback_if_open(connection: asyncpg.Connection) -> None:
    """The pool's reset: the tenant lives in SET LOCAL, so only an open transaction could
    carry state to the next request (asyncpg's default reset costs a round trip)."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """json/jsonb parameters are JSON text (or encodable values); results are decoded."""
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=_json_text, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The pool request transactions run on.

    Plain asyncpg rather than the SQLAlchemy engine's pool: a checkout through SQLAlchemy's
    greenlet bridge cost about 0.1 ms of CPU per request (cProfile, bench/api_bench.py).
    """
    pool = await asyncpg.create_pool(
        settings.asyncpg_dsn,
        min_size=min(4, settings.db_pool_size),
        max_size=settings.db_pool_size,
        init=_json_codecs,
        reset=_rollback_if_open,
        server_settings={"application_name": "coachops-runtime"},
    )
    assert pool is not None
    return pool


# Tables with RLS the runtime's role must neither own nor bypass.
_ROLE_CHECK = text(
    """
    SELECT
      (SELECT coalesce(array_agg(r.rolname::text), '{}') FROM pg_roles r
        WHERE (r.rolsuper OR r.rolbypassrls)
          AND pg_has_role(current_user, r.oid, 'MEMBER')) AS bypassing_roles,
      (SELECT coalesce(array_agg(c.relname::text), '{}') FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'
          AND (c.relrowsecurity OR c.relname IN ('creators', 'programs'))
          AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owned_tables,
      (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relrowsecurity AND c.relforcerowsecurity)
        AS forced_tables,
      EXISTS (SELECT FROM pg_roles g WHERE g.rolname = :context_group
              AND pg_has_role(current_user, g.oid, 'MEMBER')) AS names_tenants,
      EXISTS (SELECT FROM pg_roles g WHERE g.rolname = :tenant_group
              AND pg_has_role(current_user, g.oid, 'MEMBER')) AS tenant_bound,
      current_user AS role
    """
)
# The tenant RLS binds a tenant role to (current_tenant_id() reads tenant_db_roles).
_BOUND_TENANT = text("SELECT current_tenant_id()")


async def assert_role_is_safe(engine: AsyncEngine, tenant: uuid.UUID | None = None) -> None:
    """Refuse to serve if the runtime role could bypass RLS or owns a tenant table.

    The shared runtime (``tenant`` None) must name tenants per transaction: a member of the
    context group. A dedicated runtime must log in with a role of the tenant group that RLS
    binds to ``tenant`` whatever the role sets, and must not also be able to name tenants.
    """
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    _ROLE_CHECK, {"context_group": CONTEXT_GROUP, "tenant_group": TENANT_GROUP}
                )
            )
            .mappings()
            .one()
        )
        bound = None
        if tenant is not None and row["tenant_bound"] and row["forced_tables"]:
            bound = (await connection.execute(_BOUND_TENANT)).scalar()
    problems = []
    if row["bypassing_roles"]:
        problems.append(
            f"it is (or is a member of) a superuser or BYPASSRLS role: "
            f"{', '.join(row['bypassing_roles'])}"
        )
    if row["owned_tables"]:
        problems.append(
            f"it owns tenant tables (owners bypass RLS unless forced): "
            f"{', '.join(sorted(row['owned_tables']))}"
        )
    if row["forced_tables"] == 0:
        problems.append("no table has FORCE ROW LEVEL SECURITY: run the migrations first")
    elif tenant is None and not row["names_tenants"]:
        problems.append(
            f"it is not a member of {CONTEXT_GROUP}, so no tenant policy applies to it: run "
            "the migrations with this role as the runtime role"
        )
    elif tenant is not None:
        if row["names_tenants"]:
            problems.append(
                f"it is a member of {CONTEXT_GROUP}, so it could name any tenant; a dedicated "
                "runtime needs its tenant's own role"
            )
        if not row["tenant_bound"]:
            problems.append(f"it is not a member of {TENANT_GROUP}, so no tenant policy binds it")
        elif str(bound) != str(tenant):
            problems.append(f"row-level security binds it to tenant {bound}, not to {tenant}")
    if problems:
        kind = "a shared runtime" if tenant is None else f"the dedicated runtime of {tenant}"
        advice = (
            "Use the runtime role (coachops_runtime), never the schema owner or a superuser."
            if tenant is None
            else "Use the tenant's role from the operator's coachops-credentials Secret."
        )
        raise UnsafeDatabaseRoleError(
            f"refusing to start: database role {row['role']!r} is unsafe for {kind} because "
            + "; and ".join(problems)
            + ". "
            + advice
        )
