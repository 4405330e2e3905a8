"""Dedicated runtimes on the real node: the built image, restricted Pod Security, the
tenant's API through its Service, and the Deployment's life (replace, scale, suspend)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_crds import constants as c
from coachops_devstack.node import NODE_IP
from coachops_devstack.stack import Stack
from coachops_runtime.app import create_app
from coachops_runtime.kit.settings import Settings
from tests.conftest import Cluster
from tests.node.conftest import NodeHandle
from tests.node.operator_pods import OperatorPods
from tests.operator_suite.conftest import Kube, condition, eventually

PASSWORD = "correct horse battery staple"
RUNTIME_READY_TIMEOUT = 180  # the first pull unpacks the whole image
SMALL = {"cpuRequest": "100m", "cpuLimit": "500m", "memoryRequest": "192Mi", "memoryLimit": "512Mi"}


@pytest.fixture(scope="module")
async def shared_runtime(stack: Stack, platform_keys: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The platform's shared runtime (in process), where creators sign up and sign in."""
    settings = Settings(
        environment="development",
        database_url=stack.postgres.runtime_dsn,
        redis_url=stack.redis.url,
        jwt_keys_dir=platform_keys,
        kubeconfig=None,
        tenant_cache_seconds=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shared") as http:
            yield http


async def _outbox_token(stack: Stack, name: str) -> str:
    conn = await asyncpg.connect(stack.postgres.owner_dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('coachops.tenant_id', $1, true)", str(c.tenant_id(name))
            )
            row = await conn.fetchrow(
                "SELECT payload FROM email_outbox WHERE template = 'verify_email'"
                " ORDER BY created_at DESC LIMIT 1"
            )
    finally:
        await conn.close()
    assert row is not None
    return str(json.loads(row["payload"])["token"])


async def creator_token(http: httpx.AsyncClient, stack: Stack, name: str) -> str:
    """Sign the Creator's contact up on the shared runtime; its access token."""
    email = f"{name}@example.com"
    response = await http.post(
        "/v1/auth/signup", json={"creator": name, "email": email, "password": PASSWORD}
    )
    assert response.status_code == 202, response.text
    token = await _outbox_token(stack, name)
    assert (await http.post("/v1/auth/verify", json={"token": token})).status_code == 204
    response = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def runtime_ready(kube: Kube, name: str, status: str, timeout: float) -> float:  # noqa: ASYNC109
    started = time.monotonic()

    async def reached() -> bool:
        return condition(await kube.creator(name), "RuntimeReady").get("status") == status

    try:
        await eventually(reached, timeout, interval=0.5)
    except AssertionError:
        obj = await kube.creator(name)
        raise AssertionError(
            f"RuntimeReady never {status}: {json.dumps((obj or {}).get('status'), indent=1)}"
        ) from None
    return time.monotonic() - started


async def ready_pods(cluster: Cluster, namespace: str) -> list[client.V1Pod]:
    pods = await client.CoreV1Api(cluster.api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/name={c.RUNTIME_NAME}"
    )
    return [
        pod
        for pod in pods.items
        if pod.metadata.deletion_timestamp is None
        and any(
            cond.type == "Ready" and cond.status == "True" for cond in pod.status.conditions or []
        )
    ]


@pytest.fixture(scope="module")
async def dedicated(
    node_operator: OperatorPods, cluster: Cluster, node: NodeHandle
) -> AsyncIterator[tuple[str, float]]:
    """One dedicated Creator for the module; the seconds from create to RuntimeReady."""
    kube = Kube(cluster)
    name = f"ded-{int(time.time() * 1000) % 10**8}"
    started = time.monotonic()
    await kube.create_creator(
        name, isolation="dedicated", runtime={"replicas": 1, "maxReplicas": 2, "resources": SMALL}
    )
    try:
        await runtime_ready(kube, name, "True", RUNTIME_READY_TIMEOUT)
        seconds = time.monotonic() - started
        node.figures["Creator create -> RuntimeReady (first pull)"] = seconds
        yield name, seconds
    finally:
        await kube.delete_creator(name)


async def test_dedicated_runtime_serves_its_tenant_through_its_service(
    dedicated: tuple[str, float],
    node: NodeHandle,
    cluster: Cluster,
    stack: Stack,
    shared_runtime: httpx.AsyncClient,
) -> None:
    name, _ = dedicated
    namespace = c.creator_namespace(name)
    # ChromaDB at the node's address, the URL the operator's own pod created the tenant's
    # Chroma database through (VectorStoreReady), not a loopback address pods cannot reach.
    deployment = await client.AppsV1Api(cluster.api).read_namespaced_deployment(
        c.RUNTIME_NAME, namespace
    )
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert urlsplit(env["COACHOPS_CHROMA_URL"]).hostname == NODE_IP
    obj = await Kube(cluster).creator(name)
    assert condition(obj, "VectorStoreReady")["status"] == "True"
    service = await client.CoreV1Api(cluster.api).read_namespaced_service(c.RUNTIME_NAME, namespace)
    port = await node.node.forward(service.spec.cluster_ip, 80)
    own = await creator_token(shared_runtime, stack, name)
    kube = Kube(cluster)
    other = f"oth-{int(time.time() * 1000) % 10**8}"
    await kube.create_creator(other)
    try:

        async def signed_up() -> str | None:
            obj = await kube.creator(other)
            return "ok" if condition(obj, "DatabaseReady").get("status") == "True" else None

        await eventually(signed_up, 60)
        theirs = await creator_token(shared_runtime, stack, other)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
            mine = await http.get("/v1/creator", headers={"Authorization": f"Bearer {own}"})
            assert mine.status_code == 200, mine.text
            assert mine.json()["name"] == name
            # The pod's database role sees its tenant only: another tenant's valid token
            # binds to nothing there.
            for path in ("/v1/creator", "/v1/programs"):
                answer = await http.get(path, headers={"Authorization": f"Bearer {theirs}"})
                assert answer.status_code in (401, 404), answer.text
            login = await http.post(
                "/v1/auth/login", json={"email": f"{name}@example.com", "password": PASSWORD}
            )
            assert login.status_code == 421, login.text
    finally:
        await kube.delete_creator(other)


async def test_restricted_pod_security_admits_the_runtime_and_nothing_looser(
    dedicated: tuple[str, float], cluster: Cluster
) -> None:
    name, _ = dedicated
    namespace = c.creator_namespace(name)
    core = client.CoreV1Api(cluster.api)
    labels = (await core.read_namespace(namespace)).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    [pod] = await ready_pods(cluster, namespace)
    context = pod.spec.containers[0].security_context
    assert context.read_only_root_filesystem is True
    assert context.allow_privilege_escalation is False
    assert pod.spec.security_context.run_as_non_root is True
    # The same pod with privilege escalation allowed is refused at admission.
    loose = client.V1Pod(
        metadata=client.V1ObjectMeta(name="loose"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c",
                    image=pod.spec.containers[0].image,
                    security_context=client.V1SecurityContext(allow_privilege_escalation=True),
                )
            ]
        ),
    )
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_pod(namespace, loose)
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)


async def test_killed_pod_is_replaced_and_runtime_ready_follows(
    dedicated: tuple[str, float], cluster: Cluster, node: NodeHandle
) -> None:
    name, _ = dedicated
    namespace = c.creator_namespace(name)
    kube = Kube(cluster)
    [pod] = await ready_pods(cluster, namespace)
    await client.CoreV1Api(cluster.api).delete_namespaced_pod(
        pod.metadata.name, namespace, grace_period_seconds=0
    )
    await runtime_ready(kube, name, "False", 30)
    node.figures["pod killed -> RuntimeReady True again"] = await runtime_ready(
        kube, name, "True", 90
    )
    [replacement] = await ready_pods(cluster, namespace)
    assert replacement.metadata.name != pod.metadata.name


async def test_replicas_scale_and_suspend_scales_to_zero(
    dedicated: tuple[str, float], cluster: Cluster
) -> None:
    name, _ = dedicated
    namespace = c.creator_namespace(name)
    kube = Kube(cluster)

    async def pods(count: int) -> bool:
        return len(await ready_pods(cluster, namespace)) == count

    await kube.patch_creator(name, {"runtime": {"replicas": 2}})
    await eventually(lambda: pods(2), 120, interval=0.5)
    await kube.patch_creator(name, {"runtime": {"replicas": 1}})
    await kube.patch_creator(name, {"suspended": True})

    async def gone() -> bool:
        listed = await client.CoreV1Api(cluster.api).list_namespaced_pod(
            namespace, label_selector=f"app.kubernetes.io/name={c.RUNTIME_NAME}"
        )
        return not listed.items

    await eventually(gone, 90, interval=0.5)
    obj = await kube.creator(name)
    assert condition(obj, "RuntimeReady")["reason"] in ("ScaledToZero", "ScalingToZero")
    await kube.patch_creator(name, {"suspended": False})
    await eventually(lambda: pods(1), 120, interval=0.5)
    await runtime_ready(kube, name, "True", 60)


async def test_node_figures(node: NodeHandle, dedicated: tuple[str, float]) -> None:
    """Not a check of behaviour: records what the node costs (printed with -s)."""
    memory = node.node.memory()
    assert memory["kubelet"] > 0
    assert memory["containerd"] > 0
    for what, value in {
        **node.figures,
        **{f"{k} RSS MiB": v / 2**20 for k, v in memory.items()},
    }.items():
        print(f"node figure: {what}: {value:.1f}")
    await asyncio.sleep(0)
