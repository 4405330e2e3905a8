"""charts/coachops on the real node: `helm install --wait` brings the operator, the runtime
and the worker up from the built image, `helm test` passes, a sample Creator applied with
kubectl becomes Ready, its program has its model pulled and its knowledge ingested and an
end user's message gets an AI reply (all by pods, through Ollama), `helm upgrade` rolls the
runtime while a stream of requests loses none, and `helm uninstall` removes the workloads
but keeps the CRDs and the tenants' data.

The stores' credentials go in as Secrets created before the install, by the names
values.yaml gives them (the chart never makes one up); the stores and Ollama themselves are
the stack's, at the node's address. Runs before the other node tests that install the
operator from manifests/ (both are the same operator: only one may run at a time).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from kubernetes_asyncio import client

from coachops_crds import constants as c
from coachops_devstack.node import NODE_IP
from coachops_devstack.ollama import (
    EMBEDDING_PARAMETERS,
    OllamaStack,
    create_model,
    delete_model,
    push_model,
)
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.stack import Stack
from tests.chart.conftest import CHART, Helm
from tests.chart.conftest import helm as helm  # the pinned helm binary
from tests.conftest import Cluster
from tests.node.conftest import NodeHandle
from tests.node.operator_pods import at_node
from tests.ollama.conftest import ollama_stack as ollama_stack  # one Ollama per session
from tests.operator_suite.conftest import Kube, condition, eventually
from tests.runtime.conftest import PASSWORD

pytestmark = pytest.mark.slow  # pods start on the node: minutes, not seconds

RELEASE = "coachops"
NAMESPACE = "coachops-system"
SAMPLE = REPO_ROOT / "manifests" / "samples" / "creator.yaml"
PROGRAM_SAMPLE = REPO_ROOT / "manifests" / "samples" / "program.yaml"
COMPONENTS = ("coachops-operator", "coachops-runtime", "coachops-worker")


@dataclass
class Release:
    helm: Helm
    cluster: Cluster
    node: NodeHandle
    values: Path
    figures: dict[str, float]
    _api_port: int = 0

    async def api_port(self) -> int:
        """A host loopback port that reaches the runtime's Service (its ClusterIP, through
        kube-proxy in the node's namespace)."""
        if not self._api_port:
            service = await client.CoreV1Api(self.cluster.api).read_namespaced_service(
                "coachops-runtime", NAMESPACE
            )
            spec = service.spec
            self._api_port = await self.node.node.forward(spec.cluster_ip, spec.ports[0].port)
        return self._api_port

    def run(self, *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [
                str(self.helm.binary),
                f"--kubeconfig={self.cluster.kubeconfig}",
                "--namespace",
                NAMESPACE,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    async def pods(self, name: str) -> list[client.V1Pod]:
        listed = await client.CoreV1Api(self.cluster.api).list_namespaced_pod(
            NAMESPACE, label_selector=f"app.kubernetes.io/name={name}"
        )
        return [p for p in listed.items if p.metadata.deletion_timestamp is None]

    async def describe(self) -> str:
        lines = []
        listed = await client.CoreV1Api(self.cluster.api).list_namespaced_pod(NAMESPACE)
        for pod in listed.items:
            states = [s.state.to_dict() for s in pod.status.container_statuses or []]
            lines.append(f"{pod.metadata.name} {pod.status.phase} {states}")
            for log in self.node.node.workdir.glob(f"pod-logs/{NAMESPACE}_{pod.metadata.name}_*"):
                for path in sorted(log.glob("*/*.log")):
                    lines.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(lines)


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _apply(cluster: Cluster, manifest: dict[str, Any]) -> None:
    done = cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)
    assert done.returncode == 0, done.stderr


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


@pytest.fixture(scope="module")
async def release(
    helm: Helm,
    stack: Stack,
    cluster: Cluster,
    crds: None,
    node: NodeHandle,
    platform_keys: Path,
    ollama_stack: OllamaStack,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Release]:
    """The chart installed with `helm install --wait` (uninstalled at the end if a test
    has not done it)."""
    installed = await client.AppsV1Api(cluster.api).list_namespaced_deployment(
        NAMESPACE, field_selector="metadata.name=coachops-operator"
    )
    assert not installed.items, "an operator from manifests/ runs: the chart's would race it"
    _apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    # The Secrets values.yaml names: the chart reads them, never writes them.
    # The owner's DSN without the operator's ?sslmode=disable: the migrations Job reads the
    # same key, and SQLAlchemy's asyncpg dialect refuses sslmode in a URL.
    owner, runtime = at_node(stack.postgres.owner_dsn), at_node(stack.postgres.runtime_dsn)
    redis = at_node(stack.redis.url)
    keys = {p.name: p.read_text() for p in platform_keys.glob("*.pem")}
    for name, data in (
        ("coachops-database", {"owner-url": owner, "runtime-url": runtime}),
        ("coachops-redis", {"admin-url": redis, "runtime-url": redis}),
        ("coachops-jwt", keys),
    ):
        _apply(cluster, _secret(name, data))
    smtp = await node.node.expose("mailpit", stack.mailpit.smtp_port)
    await ollama_stack.start_ollama()  # a fault test may have left it stopped
    ollama = await node.node.expose("ollama", ollama_stack.port)
    registry, _, tagged = node.image.partition("/")
    repository, _, tag = tagged.rpartition(":")
    values = tmp_path_factory.mktemp("helm") / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {"registry": registry, "repository": repository, "tag": tag},
                "chroma": {"url": at_node(stack.chroma.url)},
                # Models come from the stack's loopback registry, which Ollama (on the host)
                # reaches.
                "ollama": {
                    "url": f"http://{ollama}",
                    "modelRegistry": ollama_stack.registry_address,
                    "modelRegistryInsecure": True,
                },
                "smtp": {"host": NODE_IP, "port": int(smtp.rpartition(":")[2]), "tls": "none"},
                "publicBaseUrl": "http://127.0.0.1:8000",
                # The chart's replica counts (2 and 2, each with a PDB); this node has no
                # metrics server for the autoscaler.
                "runtime": {"autoscaling": {"enabled": False}},
                # The harness installed the finalizer policy with the CRDs (crds/), as
                # `kubectl apply -f crds/` does: the release must not claim it.
                "finalizerPolicy": {"enabled": False},
            }
        )
    )
    handle = Release(helm, cluster, node, values, node.figures)
    started = time.monotonic()
    try:
        await asyncio.to_thread(
            handle.run, "install", RELEASE, str(CHART), "--values", str(values), "--wait"
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{await handle.describe()}") from None
    node.figures["helm install --wait (first pull of the image)"] = time.monotonic() - started
    try:
        yield handle
    finally:
        listed = await asyncio.to_thread(handle.run, "list", "--short")
        if RELEASE in listed.stdout.split():
            await asyncio.to_thread(handle.run, "uninstall", RELEASE, "--wait")


async def test_install_runs_every_component_and_helm_test_passes(release: Release) -> None:
    for name in COMPONENTS:
        pods = await release.pods(name)
        assert pods, name
        assert all(_ready(p) for p in pods), f"{name}:\n{await release.describe()}"
        assert all(p.spec.node_name == "coachops-node" for p in pods)
    started = time.monotonic()
    tested = await asyncio.to_thread(release.run, "test", RELEASE, "--timeout", "3m")
    release.figures["helm test"] = time.monotonic() - started
    assert "coachops-test-readyz" in tested.stdout
    assert "Succeeded" in tested.stdout, tested.stdout


async def test_sample_creator_applied_with_kubectl_becomes_ready_and_signs_up(
    release: Release, cluster: Cluster, stack: Stack
) -> None:
    """The sample Creator becomes Ready; its contact signs up through the chart's runtime
    and the chart's worker mails the verification link (to Mailpit, through the relay)."""
    kube = Kube(cluster)
    done = cluster.kubectl("apply", "-f", str(SAMPLE), check=False)
    assert done.returncode == 0, done.stderr
    name, email = _sample_contact()

    async def ready() -> dict[str, Any] | None:
        obj = await kube.creator(name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    try:
        await eventually(ready, 120, interval=0.5)
    except AssertionError:
        obj = await kube.creator(name)
        raise AssertionError(f"{(obj or {}).get('status')}\n{await release.describe()}") from None
    # Mailpit is the stack's, shared with other suites: count what it held before.
    before = len(await stack.mailpit.messages(to=email))
    port = await release.api_port()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.post(
            "/v1/auth/signup",
            json={"creator": name, "email": email, "password": PASSWORD},
        )
    assert response.status_code == 202, response.text

    async def mailed() -> bool:
        return len(await stack.mailpit.messages(to=email)) == before + 1

    await eventually(mailed, 60, interval=0.5)


async def test_the_sample_program_coaches_through_the_chart_s_pods(
    release: Release, stack: Stack, ollama_stack: OllamaStack
) -> None:
    """The sample program (manifests/samples/program.yaml, as `make up` applies it): the
    operator pod pulls its models onto Ollama, the worker pod ingests its knowledge
    (embeddings from Ollama into Chroma) and answers an end user's message with SmolLM2 on
    Ollama. The product's whole loop, with no process but the pods."""
    program = yaml.safe_load(PROGRAM_SAMPLE.read_text())
    # The sample's embedding model as `make up` provides it: pushed to the registry under
    # the name the sample Creator allows (Ollama holds it under another name).
    embedding = f"{ollama_stack.registry_address}/{program['spec']['model']['embedding']}"
    async with httpx.AsyncClient(base_url=ollama_stack.base_url, timeout=300) as ollama:
        await create_model(
            ollama, embedding, ollama_stack.embedding, parameters=EMBEDDING_PARAMETERS
        )
        await push_model(ollama, embedding)
    try:
        await _coaches(release, stack, program["metadata"]["name"])
    finally:
        # Later suites' operators would otherwise reconcile the program and pull its models.
        release.cluster.kubectl("delete", "-f", str(PROGRAM_SAMPLE), "--timeout=90s", check=False)
        async with httpx.AsyncClient(base_url=ollama_stack.base_url, timeout=60) as ollama:
            await delete_model(ollama, embedding)


def _sample_contact() -> tuple[str, str]:
    sample = yaml.safe_load(SAMPLE.read_text())
    return sample["metadata"]["name"], sample["spec"]["contact"]["email"]


async def _coaches(release: Release, stack: Stack, program: str) -> None:
    """Apply the sample program, wait for Ready, then an end user's message gets a reply."""
    cluster, kube = release.cluster, Kube(release.cluster)
    name, email = _sample_contact()
    done = cluster.kubectl("apply", "-f", str(PROGRAM_SAMPLE), check=False)
    assert done.returncode == 0, done.stderr

    async def ready() -> dict[str, Any] | None:
        obj = await kube.program(name, program)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    started = time.monotonic()
    try:
        obj = await eventually(ready, 180, interval=0.5)
    except AssertionError:
        obj = await kube.program(name, program)
        raise AssertionError(f"{(obj or {}).get('status')}\n{await release.describe()}") from None
    release.figures["program Ready (models pulled, knowledge ingested)"] = (
        time.monotonic() - started
    )
    assert condition(obj, "ModelReady").get("status") == "True"
    assert condition(obj, "KnowledgeReady").get("status") == "True"

    port = await release.api_port()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        creator = await _creator_headers(http, stack, email)
        found = await http.get(f"/v1/programs/{program}", headers=creator)
        assert found.status_code == 200, found.text
        program_id = found.json()["program_id"]
        user = await http.post(
            "/v1/end-users",
            json={"program_ids": [program_id], "display_name": "Robin"},
            headers=creator,
        )
        assert user.status_code == 201, user.text
        token = await http.post(
            "/v1/end-user-tokens",
            json={"end_user_id": user.json()["end_user_id"], "program_id": program_id},
            headers=creator,
        )
        assert token.status_code == 201, token.text
        me = {"Authorization": f"Bearer {token.json()['access_token']}"}
        question = {"body": "What should I do first after waking up?"}
        sent = await http.post("/v1/me/messages", json=question, headers=me)
        assert sent.status_code == 202, sent.text
        started = time.monotonic()

        async def replied() -> list[dict[str, Any]]:
            items = (await http.get("/v1/me/messages", headers=me)).json()["items"]
            return list(items) if len(items) == 2 else []

        try:
            messages = await eventually(replied, 120, interval=0.5)
        except AssertionError:
            raise AssertionError(await release.describe()) from None
        release.figures["AI reply through the worker pod"] = time.monotonic() - started
    assert [m["author"] for m in messages] == ["end_user", "ai"]
    assert messages[1]["reply_to"] == sent.json()["message"]["message_id"]
    assert messages[1]["body"].strip()


async def _creator_headers(http: httpx.AsyncClient, stack: Stack, email: str) -> dict[str, str]:
    """The sample's contact verifies the newest link Mailpit holds for them and logs in."""
    (newest, *_) = await stack.mailpit.messages(to=email)
    text = (await stack.mailpit.message(newest["ID"]))["Text"]
    link = re.search(r"/verify#(\S+)", text)
    assert link is not None, text
    verified = await http.post("/v1/auth/verify", json={"token": link.group(1)})
    assert verified.status_code == 204, verified.text
    login = await http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _requests(port: int, stop: asyncio.Event) -> tuple[int, list[str]]:
    """GET /readyz through the runtime's Service until ``stop``, a new connection each time
    (so each request picks a pod as kube-proxy sees them then); (sent, failures)."""
    sent, failures = 0, []
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=10, limits=limits
    ) as http:
        while not stop.is_set():
            sent += 1
            try:
                response = await http.get("/readyz")
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as error:
                failures.append(repr(error))
            await asyncio.sleep(0.05)
    return sent, failures


async def test_upgrade_rolls_the_runtime_without_losing_a_request(
    release: Release, cluster: Cluster
) -> None:
    port = await release.api_port()
    before = {p.metadata.name for p in await release.pods("coachops-runtime")}
    stop = asyncio.Event()
    stream = asyncio.create_task(_requests(port, stop))
    await asyncio.sleep(1)  # requests flow before the upgrade starts
    started = time.monotonic()
    try:
        await asyncio.to_thread(
            release.run,
            "upgrade",
            RELEASE,
            str(CHART),
            "--values",
            str(release.values),
            "--set-string",
            "runtime.podAnnotations.coachops\\.dev/rollout=2",
            "--wait",
        )
        release.figures["helm upgrade --wait (runtime rolled)"] = time.monotonic() - started

        async def old_gone() -> bool:
            listed = await client.CoreV1Api(cluster.api).list_namespaced_pod(
                NAMESPACE, label_selector="app.kubernetes.io/name=coachops-runtime"
            )
            return not before & {p.metadata.name for p in listed.items}

        # Through the old pods' preStop and shutdown: the requests keep flowing.
        await eventually(old_gone, 90, interval=0.5)
        await asyncio.sleep(1)
    finally:
        stop.set()
        sent, failures = await stream
    after = {p.metadata.name for p in await release.pods("coachops-runtime")}
    assert after, before
    assert not after & before, (before, after)
    assert all(_ready(p) for p in await release.pods("coachops-runtime"))
    release.figures["requests during the upgrade"] = sent
    assert sent > 100, sent
    assert failures == [], f"{len(failures)} of {sent} failed: {failures[:5]}"


async def test_uninstall_removes_workloads_and_keeps_crds_and_tenant_data(
    release: Release, cluster: Cluster, stack: Stack
) -> None:
    kube = Kube(cluster)
    name = yaml.safe_load(SAMPLE.read_text())["metadata"]["name"]
    assert condition(await kube.creator(name), "Ready").get("status") == "True"
    await asyncio.to_thread(release.run, "uninstall", RELEASE, "--wait")
    apps = client.AppsV1Api(cluster.api)
    core = client.CoreV1Api(cluster.api)

    async def left() -> list[str]:
        deployments = await apps.list_namespaced_deployment(NAMESPACE)
        pods = await core.list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/part-of=coachops"
        )
        return [f"Deployment/{d.metadata.name}" for d in deployments.items] + [
            f"Pod/{p.metadata.name} {p.status.phase}" for p in pods.items
        ]

    async def workloads_gone() -> bool:
        return not await left()

    try:
        await eventually(workloads_gone, 120, interval=0.5)
    except AssertionError:
        raise AssertionError(f"left after uninstall: {await left()}") from None
    # The CRDs stay (crds/ is never deleted), and so does every tenant's data.
    extensions = client.ApiextensionsV1Api(cluster.api)
    for plural in (c.CREATOR_PLURAL, c.PROGRAM_PLURAL):
        await extensions.read_custom_resource_definition(f"{plural}.{c.GROUP}")
    assert await kube.creator(name) is not None
    namespace = c.creator_namespace(name)
    await core.read_namespace(namespace)
    assert await kube.secret_data(namespace, c.TENANT_SECRET)
    conn = await asyncpg.connect(stack.postgres.superuser_dsn)
    try:
        row = await conn.fetchval("SELECT count(*) FROM creators WHERE name = $1", name)
    finally:
        await conn.close()
    assert row == 1
    # The next operator (manifests/, later in this package) finishes the deletion; the
    # sample's reclaimPolicy is Retain.
    await kube.delete_creator(name)
