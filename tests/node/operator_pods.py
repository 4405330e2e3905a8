"""The operator as pods on the node, installed from manifests/operator/ as a cluster
administrator would: the RBAC file as written, Secrets for the stores' credentials and the
platform's JWT public keys, and the Deployment with what an overlay changes (the image, the
store URLs the pods reach, shorter leader-election and drift intervals)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_devstack.node import NODE_IP, Node
from coachops_devstack.paths import REPO_ROOT
from coachops_operator import jwt_keys
from tests.conftest import Cluster

NAMESPACE = "coachops-system"
NAME = "coachops-operator"
LABELS = f"app.kubernetes.io/name={NAME}"
MANIFESTS = REPO_ROOT / "manifests" / "operator"
LEASE_SECONDS = 8
POD_READY_TIMEOUT = 180  # the first pull unpacks the whole image


def at_node(url: str) -> str:
    """``url`` with its host replaced by the node's address (where relays lead pods to the
    stack's loopback ports)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" if credentials else ""
    return urlunsplit(parts._replace(netloc=f"{netloc}{NODE_IP}:{parts.port}"))


def documents(file: str) -> list[dict[str, Any]]:
    """The objects of ``manifests/operator/<file>`` (rendered from the chart)."""
    text = (MANIFESTS / file).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def deployment(image: str, env: dict[str, str]) -> dict[str, Any]:
    """The operator's Deployment from manifests/operator/ with ``image`` and the ``env``
    values set (each name must be in the manifest as a plain value)."""
    [manifest] = [d for d in documents("deployment.yaml") if d["kind"] == "Deployment"]
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    listed = {entry["name"]: entry for entry in container["env"]}
    for name, value in env.items():
        assert "value" in listed.get(name, {}), f"the manifest has no plain value {name}"
        listed[name]["value"] = value
    return manifest


def secrets_for(manifest: dict[str, Any], values: dict[str, str]) -> dict[str, dict[str, str]]:
    """The Secrets the Deployment reads, by name then key, filled from ``values`` (by the
    environment variable that reads each key); a key no value is given for fails here."""
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    found: dict[str, dict[str, str]] = {}
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        if entry["name"] not in values:
            assert ref.get("optional"), f"no value for {entry['name']} (Secret {ref['name']})"
            continue
        found.setdefault(ref["name"], {})[ref["key"]] = values[entry["name"]]
    return found


def jwt_secret(manifest: dict[str, Any]) -> str:
    """The Secret mounted where COACHOPS_OPERATOR_JWT_KEYS_DIR points."""
    spec = manifest["spec"]["template"]["spec"]
    container = spec["containers"][0]
    [path] = [e["value"] for e in container["env"] if e["name"] == "COACHOPS_OPERATOR_JWT_KEYS_DIR"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    return str(volume["secret"]["secretName"])


@dataclass
class OperatorPods:
    """The installed operator: its pods, its Lease, and the pods' logs on the node."""

    cluster: Cluster
    node: Node
    figures: dict[str, float] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # the Secrets install() applied

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.cluster.api)

    async def pods(self, *, ready: bool = False) -> list[client.V1Pod]:
        listed = await self.core.list_namespaced_pod(NAMESPACE, label_selector=LABELS)
        found = [p for p in listed.items if p.metadata.deletion_timestamp is None]
        if ready:
            found = [p for p in found if _ready(p)]
        return found

    async def wait_ready(self, count: int, timeout: float = POD_READY_TIMEOUT) -> float:  # noqa: ASYNC109
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if len(await self.pods(ready=True)) == count:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        raise AssertionError(f"operator pods not {count} Ready:\n{await self.describe()}")

    async def holder(self) -> str:
        """The pod that holds the leader-election Lease ("" when none): the operator's
        identity is its host name (the pod's name) and its process id."""
        coordination = client.CoordinationV1Api(self.cluster.api)
        try:
            lease = await coordination.read_namespaced_lease(NAME, NAMESPACE)
        except ApiException as error:
            if error.status == 404:
                return ""
            raise
        return (lease.spec.holder_identity or "").rpartition("-")[0]

    def log(self, pod: str) -> str:
        """The pod's container logs, read from the node's log directory (the apiserver
        cannot reach the kubelet here)."""
        found = sorted(self.node.workdir.glob(f"pod-logs/{NAMESPACE}_{pod}_*/*/*.log"))
        return "\n".join(path.read_text(errors="replace") for path in found)

    async def describe(self) -> str:
        lines = []
        for pod in await self.pods():
            statuses = [
                (s.name, s.ready, s.restart_count, s.state.to_dict() if s.state else None)
                for s in pod.status.container_statuses or []
            ]
            lines.append(f"{pod.metadata.name}: {pod.status.phase} {statuses}")
            lines.append(self.log(pod.metadata.name)[-3000:])
        return "\n".join(lines)


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _kubectl(cluster: Cluster, *args: str, manifest: str | None = None) -> None:
    done = cluster.kubectl(*args, input=manifest, check=False)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


async def install(
    cluster: Cluster,
    node: Node,
    image: str,
    *,
    secrets: dict[str, str],
    keys_dir: Path,
    env: dict[str, str],
) -> OperatorPods:
    """Apply manifests/operator/ (RBAC, then the Secrets the Deployment names, filled from
    ``secrets`` keyed by the variable that reads them, then the Deployment) and wait for
    both replicas to be Ready."""
    handle = OperatorPods(cluster, node)
    started = time.monotonic()
    _kubectl(cluster, "apply", "-f", str(MANIFESTS / "rbac.yaml"))
    manifest = deployment(image, env)
    data = secrets_for(manifest, secrets)
    data[jwt_secret(manifest)] = {
        f"{kid}.pub.pem": pem for kid, pem in jwt_keys.public_keys(keys_dir).items()
    }
    handle.secrets = list(data)
    others = [d for d in documents("deployment.yaml") if d["kind"] != "Deployment"]
    # The Secrets before the Deployment that reads them, in one kubectl.
    items = [*(_secret(name, values) for name, values in data.items()), *others, manifest]
    listed = {"apiVersion": "v1", "kind": "List", "items": items}
    _kubectl(cluster, "apply", "-f", "-", manifest=json.dumps(listed))
    await handle.wait_ready(2)
    handle.figures["kubectl apply -> 2 operator pods Ready"] = time.monotonic() - started
    return handle


async def uninstall(handle: OperatorPods) -> None:
    """Delete what ``install`` applied but the namespace (the Lease elector creates it
    where it is missing, too) and wait until no operator pod runs: nothing may reconcile
    after the tests that use it."""
    cluster = handle.cluster
    _delete(cluster, documents("deployment.yaml"))
    core = client.CoreV1Api(cluster.api)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = await core.list_namespaced_pod(NAMESPACE, label_selector=LABELS)
        if not listed.items:
            break
        await asyncio.sleep(0.5)
    secrets = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n, "namespace": NAMESPACE}}
        for n in handle.secrets
    ]
    rbac = [doc for doc in documents("rbac.yaml") if doc["kind"] != "Namespace"]
    _delete(cluster, [*rbac, *secrets])


def _delete(cluster: Cluster, docs: list[dict[str, Any]]) -> None:
    """Delete ``docs`` with one kubectl (each process costs a second on a busy machine)."""
    listed = {"apiVersion": "v1", "kind": "List", "items": docs}
    _kubectl(cluster, "delete", "--ignore-not-found", "-f", "-", manifest=json.dumps(listed))
