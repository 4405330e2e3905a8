"""Crashes, failover and stores that go down: the operator converges without duplicates."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from kubernetes_asyncio import client

from coachops_crds import constants as c
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.redis import Redis
from coachops_devstack.stack import Stack
from coachops_operator import fence
from tests.conftest import Cluster
from tests.operator_suite.conftest import (
    LEASE_SECONDS,
    Kube,
    Operator,
    condition,
    eventually,
    wait_ready,
)


async def _ready_count(kube: Kube, names: list[str]) -> int:
    listed = await kube.objects.list_cluster_custom_object(c.GROUP, c.VERSION, c.CREATOR_PLURAL)
    wanted = set(names)
    return sum(
        1
        for item in listed["items"]
        if item["metadata"]["name"] in wanted and condition(item, "Ready").get("status") == "True"
    )


@pytest.mark.slow
async def test_kill_9_while_reconciling_20_creators_converges_without_duplicates(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
) -> None:
    # A fresh replica (the one that ran the tests before stops cleanly and saves its
    # coverage data): the kill below loses only what this replica measured.
    await operator.restart()
    names = [new_creator_name("crash") for _ in range(20)]
    creators.extend(names)
    await asyncio.gather(*(kube.create_creator(name) for name in names))
    # Kill the operator in the middle: some tenants done, some not.
    await eventually(lambda: _some_ready(kube, names), 60, interval=0.1)
    assert operator.current is not None
    operator.current.kill()
    partial = await _ready_count(kube, names)
    print(f"killed with {partial}/20 Ready")
    assert partial < 20, "the operator finished before it was killed; nothing was tested"
    await operator.start()  # waits for the dead replica's Lease to expire

    async def all_ready() -> bool:
        return await _ready_count(kube, names) == 20

    await eventually(all_ready, 120, interval=1)
    # No duplicates: one row, one role, one Secret and one of every child per tenant.
    ids = [c.tenant_id(name) for name in names]
    rows = await superuser.fetchval(
        "SELECT count(*) FROM creators WHERE creator_id = ANY($1::uuid[])", ids
    )
    assert rows == 20
    roles = await superuser.fetchval(
        "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1::text[])",
        [c.tenant_db_role(name) for name in names],
    )
    assert roles == 20
    bindings = await superuser.fetchval(
        "SELECT count(*) FROM tenant_db_roles WHERE creator_id = ANY($1::uuid[])", ids
    )
    assert bindings == 20
    core = client.CoreV1Api(cluster.api)
    for name in names:
        ns = c.creator_namespace(name)
        secrets = await core.list_namespaced_secret(
            ns, label_selector=f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
        )
        assert len(secrets.items) == 1
        quotas = await core.list_namespaced_resource_quota(ns)
        assert len(quotas.items) == 1
        obj = await kube.creator(name)
        # The probe passed with the password in the Secret: Secret and role agree.
        assert "0 foreign rows" in condition(obj, "DatabaseReady")["message"]


async def _some_ready(kube: Kube, names: list[str]) -> bool:
    return await _ready_count(kube, names) >= 1


@pytest.mark.slow
async def test_standby_replica_takes_over_within_30_s(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    assert operator.current is not None
    leader = operator.current
    standby = operator.new().start()
    try:
        await eventually(lambda: _role_is(standby, "standby"), 30)
        await asyncio.sleep(2)
        assert await standby.role() == "standby"
        assert await leader.role() == "leader"
        leader.kill()
        killed = time.monotonic()
        await standby.wait_leader(timeout=40)
        name = new_creator_name("failover")
        creators.append(name)
        await kube.create_creator(name)
        await wait_ready(kube, name, timeout=40)
        takeover = time.monotonic() - killed
        print(f"standby took over and reconciled a new Creator {takeover:.1f} s after kill -9")
        assert takeover < 30, f"takeover took {takeover:.1f} s (Lease {LEASE_SECONDS} s)"
    finally:
        operator.current = standby  # the fixture stops it at the end


@pytest.mark.slow
async def test_a_frozen_leader_exits_without_writing_after_the_standby_took_over(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
) -> None:
    """SIGSTOP the leader past its Lease; the standby takes over and works; then the new
    leader is killed and a Creator changed, so that only the old leader could act on it.
    SIGCONT: the old leader must exit before it writes anything (status, Events, the
    tenant row, the Lease)."""
    assert operator.current is not None
    old = operator.current
    name = new_creator_name("frozen")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name)
    standby = operator.new().start()
    try:
        await eventually(lambda: _role_is(standby, "standby"), 30)
        os.kill(old.process.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        await standby.wait_leader(timeout=40)
        print(f"standby leads {time.monotonic() - frozen:.1f} s after SIGSTOP")
        # The new leader works.
        second = new_creator_name("frozen")
        creators.append(second)
        await kube.create_creator(second)
        await wait_ready(kube, second, timeout=60)
        standby.kill()
        # Work only the old leader could now do (the new one is gone).
        await kube.patch_creator(name, {"displayName": "Changed while frozen"})
        before = await kube.creator(name)
        assert before is not None
        events_before = await kube.events(name)
        lease = await _lease(kube)
        assert lease.spec.holder_identity == standby.identity
        os.kill(old.process.pid, signal.SIGCONT)

        async def exited() -> bool:
            return not old.process.running()

        await eventually(exited, 15, interval=0.1)
        assert old.process.popen is not None
        assert old.process.popen.returncode == fence.EXIT_CODE, old.process.log_tail()
        assert "leadership lost" in old.log()
        # Give anything it might have sent time to land, then look: nothing changed.
        await asyncio.sleep(2)
        after = await kube.creator(name)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert after["status"]["observedGeneration"] < after["metadata"]["generation"]
        assert await kube.events(name) == events_before
        assert (await _lease(kube)).metadata.resource_version == lease.metadata.resource_version
        display = await superuser.fetchval(
            "SELECT display_name FROM creators WHERE creator_id = $1", c.tenant_id(name)
        )
        assert display == f"Coach {name}"
    finally:
        if old.process.running():
            os.kill(old.process.pid, signal.SIGCONT)
        old.stop()
        standby.stop()
        await operator.start()  # a fresh leader for the tests that follow


async def _lease(kube: Kube) -> Any:
    return await client.CoordinationV1Api(kube.api).read_namespaced_lease(
        "coachops-operator", "coachops-system"
    )


async def _role_is(replica: object, role: str) -> bool:
    try:
        return bool(await replica.role() == role)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not serving yet
        return False


async def test_store_down_gives_a_false_condition_then_recovers(
    operator: Operator,
    stack: Stack,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    # An operator whose Redis is down from the start.
    redis = Redis(stack.workdir / f"redis-down-{time.monotonic_ns()}")
    await redis.start()
    redis.stop()
    await operator.restart(COACHOPS_OPERATOR_REDIS_URL=redis.url)
    try:
        name = new_creator_name("down")
        creators.append(name)
        await kube.create_creator(name, isolation="dedicated")

        async def cache_down() -> object:
            obj = await kube.creator(name)
            cache = condition(obj, "CacheReady")
            return obj if cache.get("reason") == "CacheUnavailable" else None

        obj = await eventually(cache_down, 40)
        assert condition(obj, "CacheReady")["status"] == "False"
        assert condition(obj, "Ready")["status"] == "False"
        # Other stores are still provisioned: the failure is confined to its condition.
        assert condition(obj, "DatabaseReady")["status"] == "True"
        await kube.reasons_eventually(name, {"CacheUnavailable"})
        # The operator keeps running (no crash loop) and retries with backoff.
        assert operator.current is not None
        assert await operator.current.role() == "leader"
        await redis.start()  # same port, the store comes back

        async def cache_up() -> bool:
            return condition(await kube.creator(name), "CacheReady").get("status") == "True"

        await eventually(cache_up, 90, interval=1)
        assert operator.current.process.running()
    finally:
        redis.stop()
        await operator.restart()


async def test_operator_runs_with_its_own_rbac(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    """manifests/operator/rbac.yaml is enough: the operator works as its ServiceAccount."""
    cluster.kubectl("apply", "-f", str(REPO_ROOT / "manifests" / "operator" / "rbac.yaml"))
    kubeconfig = await cluster.service_account_kubeconfig("coachops-system", "coachops-operator")
    await operator.restart(KUBECONFIG=str(kubeconfig))
    try:
        name = new_creator_name("rbac")
        creators.append(name)
        await kube.create_creator(name)
        obj = await wait_ready(kube, name)
        assert condition(obj, "Ready")["reason"] == "Reconciled"
        await kube.create_program(name, "rbac-program")

        async def program_ready() -> bool:
            found = await kube.program(name, "rbac-program")
            return condition(found, "Ready").get("status") == "True"

        await eventually(program_ready, 30)
        denied = cluster.kubectl(
            "auth", "can-i", "get", "pods", "-n", "kube-system", kubeconfig=kubeconfig, check=False
        )
        assert denied.stdout.strip() == "no"
    finally:
        await operator.restart()


async def test_operator_logs_in_with_an_exec_plugin(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """A kubeconfig whose user is an exec plugin, as on EKS, GKE and AKS: here the plugin
    prints the operator ServiceAccount's token from the TokenRequest API."""
    cluster.kubectl("apply", "-f", str(REPO_ROOT / "manifests" / "operator" / "rbac.yaml"))
    static = await cluster.service_account_kubeconfig("coachops-system", "coachops-operator")
    config = yaml.safe_load(static.read_text())
    token_file = tmp_path / "token"
    token_file.write_text(config["users"][0]["user"].pop("token"))
    runs = tmp_path / "runs"
    plugin = tmp_path / "token-plugin"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(runs)!r}, 'a').write('run\\n')\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential',"
        f" 'status': {{'token': open({str(token_file)!r}).read()}}}}))\n"
    )
    plugin.chmod(0o700)
    config["users"][0]["user"]["exec"] = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": str(plugin),
        "interactiveMode": "Never",
    }
    kubeconfig = tmp_path / "exec.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    await operator.restart(KUBECONFIG=str(kubeconfig))
    try:
        name = new_creator_name("exec")
        creators.append(name)
        await kube.create_creator(name)
        obj = await wait_ready(kube, name)
        assert condition(obj, "Ready")["reason"] == "Reconciled"
        # Start-up check, the operator's client, kopf's session: the plugin ran for each.
        assert len(runs.read_text().splitlines()) >= 3
    finally:
        await operator.restart()
