"""A dedicated runtime as a process, configured exactly as the operator's Deployment
configures its pod: the container's command and environment (values and the tenant Secret's
keys), production mode, the tenant's own database role, verify-only JWT keys.

Only the listen address and port change (a process shares the host's network; a pod has its
own), and ``python3`` is this interpreter.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_runtime.kit.db import UnsafeDatabaseRoleError, assert_role_is_safe
from tests.conftest import Database
from tests.node.dedicated import DedicatedTenant, provision_dedicated
from tests.runtime.conftest import PASSWORD, Creator, Tenants
from tests.runtime.conftest import app as app  # fixtures the runtime's tests use too
from tests.runtime.conftest import client as client
from tests.runtime.conftest import keys_dir as keys_dir
from tests.runtime.conftest import runtime_settings as runtime_settings
from tests.runtime.conftest import tenants as tenants


async def _dedicated(
    name: str, database: Database, stack: Stack, keys_dir: Path
) -> DedicatedTenant:
    return await provision_dedicated(
        name,
        owner_dsn=database.owner_dsn,
        pg_host="127.0.0.1",
        pg_port=stack.postgres.port,
        database=database.name,
        redis_admin_url=stack.redis.url,
        redis_host="127.0.0.1",
        redis_port=stack.redis.port,
        chroma_url=stack.chroma.url,
        keys_dir=keys_dir,
    )


def _argv(tenant: DedicatedTenant, port: int) -> list[str]:
    command = list(tenant.container()["command"])
    assert command[:3] == ["python3", "-m", "coachops_runtime"]
    command[0] = sys.executable
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    return command


@pytest.fixture
async def dedicated_runtime(
    database: Database,
    stack: Stack,
    keys_dir: Path,
    tenants: Tenants,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> AsyncIterator[tuple[DedicatedTenant, str]]:
    name = unique_name("ded-")
    await tenants.signed_up(name)
    tenant = await _dedicated(name, database, stack, keys_dir)
    env = tenant.environment()
    assert env["COACHOPS_ENVIRONMENT"] == "production"
    assert "BEGIN PUBLIC KEY" in env["COACHOPS_JWT_PUBLIC_KEYS"]
    port = free_port()
    process = ManagedProcess(
        f"dedicated-{name}",
        _argv(tenant, port),
        tmp_path / "dedicated.log",
        # Nothing of this test's own environment may configure the runtime.
        env={"PYTHONUNBUFFERED": "1", **env, "COACHOPS_JWT_KEYS_DIR": str(tmp_path / "none")},
    )
    base = f"http://127.0.0.1:{port}"
    process.start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await process.wait_ready(ready, timeout=60)
        yield tenant, base
    finally:
        process.stop()


async def test_dedicated_runtime_serves_only_its_tenant(
    dedicated_runtime: tuple[DedicatedTenant, str],
    tenants: Tenants,
    unique_name: Callable[[str], str],
) -> None:
    tenant, base = dedicated_runtime
    other = await tenants.signed_up(unique_name("other-"))
    # The creator signed up and logged in on the shared runtime (which signs tokens).
    login = await tenants.client.post(
        "/v1/auth/login", json={"email": f"{tenant.name}@example.com", "password": PASSWORD}
    )
    own_token = login.json()["access_token"]
    await tenants.add_program(
        Creator(tenant.name, tenant.tenant_id, f"{tenant.name}@example.com"), "first"
    )
    await tenants.add_program(other, "theirs")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        mine = await http.get("/v1/creator", headers={"Authorization": f"Bearer {own_token}"})
        assert mine.status_code == 200, mine.text
        assert mine.json()["name"] == tenant.name
        # The tenant's Redis user runs the rate limiter (it fails open when Redis refuses).
        assert "ratelimit-policy" in mine.headers
        programs = await http.get("/v1/programs", headers={"Authorization": f"Bearer {own_token}"})
        assert programs.status_code == 200, programs.text
        assert [p["name"] for p in programs.json()] == ["first"]
        # A valid token of another tenant: its tenant is invisible to this role.
        theirs = await http.get("/v1/creator", headers=other.headers)
        assert theirs.status_code in (401, 404), theirs.text
        theirs = await http.get("/v1/programs", headers=other.headers)
        assert theirs.status_code in (401, 404), theirs.text
        # This runtime verifies tokens; it never issues them.
        login = await http.post(
            "/v1/auth/login", json={"email": f"{tenant.name}@example.com", "password": PASSWORD}
        )
        assert login.status_code == 421, login.text
        assert login.json()["status"] == 421


async def test_tenant_role_sees_only_its_tenant_whatever_it_sets(
    dedicated_runtime: tuple[DedicatedTenant, str],
    tenants: Tenants,
    unique_name: Callable[[str], str],
) -> None:
    tenant, _base = dedicated_runtime
    other = await tenants.signed_up(unique_name("other-"))
    conn = await asyncpg.connect(tenant.environment()["COACHOPS_DATABASE_URL"])
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('coachops.tenant_id', $1, true)", str(other.creator_id)
            )
            names = [r["name"] for r in await conn.fetch("SELECT name FROM creators")]
    finally:
        await conn.close()
    assert names == [tenant.name]


async def test_role_check_accepts_the_bound_tenant_role_only(
    database: Database,
    stack: Stack,
    keys_dir: Path,
    tenants: Tenants,
    unique_name: Callable[[str], str],
) -> None:
    name = unique_name("ded-")
    await tenants.provision(name)
    tenant = await _dedicated(name, database, stack, keys_dir)
    other = await tenants.provision(unique_name("other-"))

    async def check(dsn: str, bound_to: object) -> None:
        engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            await assert_role_is_safe(engine, bound_to)  # type: ignore[arg-type]
        finally:
            await engine.dispose()

    tenant_dsn = tenant.environment()["COACHOPS_DATABASE_URL"]
    await check(tenant_dsn, tenant.tenant_id)
    with pytest.raises(UnsafeDatabaseRoleError, match="binds it to tenant"):
        await check(tenant_dsn, other.creator_id)
    # The shared runtime's role could name any tenant: not for a dedicated runtime.
    with pytest.raises(UnsafeDatabaseRoleError, match="could name any tenant"):
        await check(database.runtime_dsn, tenant.tenant_id)
    # A tenant role is no shared runtime role either.
    with pytest.raises(UnsafeDatabaseRoleError, match="not a member of coachops_tenant_context"):
        await check(tenant_dsn, None)
    for unsafe, why in (
        (database.superuser_dsn, "superuser or BYPASSRLS"),
        (database.owner_dsn, "owns tenant tables"),
    ):
        with pytest.raises(UnsafeDatabaseRoleError, match=why):
            await check(unsafe, tenant.tenant_id)
