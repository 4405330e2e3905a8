"""Session-wide fixtures: a real control plane, PostgreSQL, Redis and ChromaDB on loopback.

Set ``COACHOPS_TEST_USE_EXISTING_CLUSTER=true`` (with ``KUBECONFIG``) to run the suite
against an existing cluster, such as kind, instead of starting etcd and kube-apiserver.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from kubernetes_asyncio import client, config

from coachops_devstack.controlplane import controlplane_bin
from coachops_devstack.kubeconfig import service_account_kubeconfig
from coachops_devstack.mailpit import Mailpit
from coachops_devstack.postgres import TEMPLATE_DATABASE
from coachops_devstack.stack import Stack, StackTimings, start_stack

_timings: list[StackTimings] = []


def use_existing_cluster() -> bool:
    return os.environ.get("COACHOPS_TEST_USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for timings in _timings:
        terminalreporter.write_sep("-", "coachops stack")
        terminalreporter.write_line(timings.table())


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    started = await start_stack(with_cluster=not use_existing_cluster())
    _timings.append(started.timings)
    try:
        yield started
    finally:
        started.stop()


# ------------------------------------------------------------------ Kubernetes


@dataclass
class Cluster:
    kubeconfig: Path
    workdir: Path
    api: client.ApiClient

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against this cluster."""
        return subprocess.run(
            [str(kubectl_path()), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    async def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        return await service_account_kubeconfig(
            self.kubeconfig, namespace, name, self.workdir / "kubeconfigs"
        )


def kubectl_path() -> Path:
    try:
        return controlplane_bin("kubectl")
    except FileNotFoundError:
        return Path("kubectl")


@pytest.fixture(scope="session")
async def cluster(stack: Stack) -> AsyncIterator[Cluster]:
    if stack.cluster is not None:
        kubeconfig = stack.cluster.kubeconfig
    else:
        kubeconfig = Path(os.environ.get("KUBECONFIG", os.path.expanduser("~/.kube/config")))
    api = await config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield Cluster(kubeconfig, stack.workdir, api)
    finally:
        await api.close()


@pytest.fixture
async def namespace(cluster: Cluster) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(cluster.api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        await core.delete_namespace(name)


# ------------------------------------------------------------------ PostgreSQL


@dataclass(frozen=True)
class Database:
    """DSNs for one migrated database: superuser, schema owner and shared runtime."""

    name: str
    superuser_dsn: str
    owner_dsn: str
    runtime_dsn: str


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[Database]:
    """A fresh copy of the migrated database for one test, dropped afterwards."""
    pg = stack.postgres
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg.dsn_for("postgres"))
    try:
        await admin.execute(
            f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE} OWNER coachops_owner"
        )
    finally:
        await admin.close()
    try:
        yield Database(
            name,
            pg.dsn_for(name),
            pg.dsn_for(name, "coachops_owner", pg.owner_password),
            pg.dsn_for(name, "coachops_runtime", pg.runtime_password),
        )
    finally:
        admin = await asyncpg.connect(pg.dsn_for("postgres"))
        try:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        finally:
            await admin.close()


# ------------------------------------------------------------------ Mailpit


@pytest.fixture(scope="session")
def mailpit(stack: Stack) -> Mailpit:
    """The stack's SMTP server; tests tell their e-mails apart by recipient address."""
    return stack.mailpit


# ------------------------------------------------------------------ Redis and Chroma


@pytest.fixture
async def redis_prefix(stack: Stack) -> AsyncIterator[str]:
    """A key prefix owned by one test; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    admin = aioredis.Redis.from_url(stack.redis.url)
    try:
        keys = [key async for key in admin.scan_iter(match=f"{prefix}*")]
        if keys:
            await admin.delete(*keys)
    finally:
        await admin.aclose()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names (collections, tenants, roles) that no other test uses."""

    def make(prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex[:10]}"

    return make
