"""The operator itself as pods on the node, installed from manifests/operator/ with the
built image: two replicas, one leads (the Lease holder reconciles), the other stands by;
the leader's pod deleted, another pod takes over within the Lease's bound and reconciles.
Every store a Creator needs (PostgreSQL, Redis, ChromaDB) is reached from inside the pods'
network namespace, through the node's relays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client

from coachops_crds import constants as c
from coachops_devstack.node import NODE_IP
from tests.conftest import Cluster
from tests.node.conftest import NodeHandle
from tests.node.operator_pods import LEASE_SECONDS, NAMESPACE, OperatorPods
from tests.operator_suite.conftest import Kube, condition, eventually

pytestmark = pytest.mark.slow  # pods start on the node: minutes, not seconds

ACQUIRE_RETRY = 2.0  # a standby polls the Lease this often (LeaseElector.acquire)
FIRST_ELECTION = 90.0  # seconds from both pods Ready to a leader: start-up plus the Lease
STORES = ("NamespaceReady", "DatabaseReady", "CacheReady", "VectorStoreReady")


async def _ready(kube: Kube, name: str, pods: OperatorPods, timeout: float = 90) -> dict[str, Any]:  # noqa: ASYNC109
    async def done() -> dict[str, Any] | None:
        obj = await kube.creator(name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    try:
        found: dict[str, Any] = await eventually(done, timeout, interval=0.5)
    except AssertionError:
        obj = await kube.creator(name)
        raise AssertionError(
            f"{name} never Ready: {(obj or {}).get('status')}\n{await pods.describe()}"
        ) from None
    return found


async def _leader(
    pods: OperatorPods,
    accept: Callable[[str], bool],
    timeout: float = LEASE_SECONDS * 3,  # noqa: ASYNC109
) -> str:
    """The Lease's holder, once it is one that ``accept`` takes."""

    async def held() -> str:
        holder = await pods.holder()
        return holder if holder and accept(holder) else ""

    try:
        return str(await eventually(held, timeout, interval=0.2))
    except AssertionError:
        names = sorted(p.metadata.name for p in await pods.pods())
        logs = "\n".join(f"--- {pod}\n{pods.log(pod)[-3000:]}" for pod in names)
        raise AssertionError(
            f"no expected pod holds the Lease (holder: {await pods.holder()!r})\n"
            f"{await pods.describe()}\n{logs}"
        ) from None


async def test_operator_pods_lead_reconcile_and_hand_over(
    node_operator: OperatorPods, cluster: Cluster, node: NodeHandle
) -> None:
    pods = node_operator
    kube = Kube(cluster)
    names = {p.metadata.name for p in await pods.pods(ready=True)}
    assert len(names) == 2
    # A pod is Ready before its operator process has started and asked for the Lease
    # (the probe does not wait for the election); on a loaded node that start takes a while.
    leader = await _leader(pods, names.__contains__, timeout=FIRST_ELECTION)
    [standby] = names - {leader}
    # One replica reconciles, the other waits for the Lease.
    assert "became the leader" in pods.log(leader)
    assert "standing by" in pods.log(standby)
    assert "became the leader" not in pods.log(standby)

    first = f"pods-a-{int(time.time() * 1000) % 10**7}"
    second = f"pods-b-{int(time.time() * 1000) % 10**7}"
    await kube.create_creator(first)
    try:
        obj = await _ready(kube, first, pods)
        # Each store was reached from the leader pod's network namespace: the role and
        # Redis ACL written, the Chroma tenant and database created.
        for part in STORES:
            assert condition(obj, part)["status"] == "True", (part, obj["status"])
        secret = await kube.secret_data(c.creator_namespace(first), c.TENANT_SECRET)
        assert secret["PGHOST"] == NODE_IP

        # The leader's pod goes (no grace period).
        deleted = time.monotonic()
        await pods.core.delete_namespaced_pod(leader, NAMESPACE, grace_period_seconds=0)
        new_leader = await _leader(pods, lambda holder: holder != leader)
        takeover = time.monotonic() - deleted
        node.figures["leader pod deleted -> another pod holds the Lease"] = takeover
        # Another pod takes over once the Lease has gone unrenewed for its duration, as the
        # standby observes it (polling every ACQUIRE_RETRY s). When the kubelet's SIGTERM
        # reached the old leader first, it released the Lease as it stopped, and whichever
        # asked first took it at once: the standby or the Deployment's replacement pod.
        assert takeover <= LEASE_SECONDS + 2 * ACQUIRE_RETRY + 1, takeover

        await kube.create_creator(second)
        obj = await _ready(kube, second, pods)
        for part in STORES:
            assert condition(obj, part)["status"] == "True", (part, obj["status"])
        # The Deployment replaced the deleted pod; of the two, the one that does not lead
        # stands by.
        await pods.wait_ready(2, timeout=120)
        node.figures["leader pod deleted -> 2 operator pods Ready"] = time.monotonic() - deleted
        live = {p.metadata.name for p in await pods.pods(ready=True)}
        assert leader not in live
        assert {standby, new_leader} <= live
        [other] = live - {new_leader}
        await asyncio.sleep(ACQUIRE_RETRY)
        assert await pods.holder() == new_leader
        assert "became the leader" in pods.log(new_leader)
        assert "standing by" in pods.log(other)
        assert "became the leader" not in pods.log(other)
        # The first Creator is still Ready under the new leader (its drift checks ran there).
        assert condition(await kube.creator(first), "Ready")["status"] == "True"
    finally:
        await kube.delete_creator(first)
        await kube.delete_creator(second)


async def test_operator_pod_runs_as_the_manifest_says(
    node_operator: OperatorPods, cluster: Cluster
) -> None:
    """Restricted Pod Security in coachops-system admits the pods as the manifest writes
    them, and they log in with their ServiceAccount (in-cluster, through the `kubernetes`
    Service), not with any kubeconfig."""
    core = client.CoreV1Api(cluster.api)
    labels = (await core.read_namespace(NAMESPACE)).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    [pod, *_] = await node_operator.pods(ready=True)
    assert pod.spec.service_account_name == "coachops-operator"
    container = pod.spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert "coachops_operator" in [*(container.command or []), *(container.args or [])]
    assert not any(e.name == "KUBECONFIG" for e in container.env or [])
