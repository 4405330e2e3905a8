"""Programs are CoachingProgram objects written by the runtime's restricted ServiceAccount."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes_asyncio import client as k8s

from coachops_crds.constants import FINALIZER, GROUP, PROGRAM_PLURAL, VERSION, creator_namespace
from coachops_devstack.crds import install_crds
from coachops_devstack.paths import REPO_ROOT
from coachops_runtime.app import create_app
from coachops_runtime.kit.settings import Settings
from tests.conftest import Cluster, Database, kubectl_path
from tests.runtime.conftest import Tenants

RBAC = REPO_ROOT / "manifests" / "runtime-rbac.yaml"
SPEC = {"title": "Run a 5k", "persona": {"name": "Robin", "tone": "upbeat"}}


def program_binding(namespace: str) -> str:
    """The RoleBinding the operator writes into each creator namespace."""
    return f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: coachops-runtime-programs
  namespace: {namespace}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: coachops-runtime-programs
subjects:
  - kind: ServiceAccount
    name: coachops-runtime
    namespace: coachops-system
"""


@pytest.fixture(scope="module")
async def runtime_kubeconfig(cluster: Cluster) -> Path:
    install_crds(kubectl_path(), cluster.kubeconfig, force_conflicts=True)
    cluster.kubectl("apply", "-f", str(RBAC))
    return await cluster.service_account_kubeconfig("coachops-system", "coachops-runtime")


@pytest.fixture
async def creator_namespaces(
    cluster: Cluster, unique_name: Callable[[str], str]
) -> AsyncIterator[list[str]]:
    """Two creator names whose namespaces exist and are bound like the operator binds them."""
    names = [unique_name("pa"), unique_name("pb")]
    for name in names:
        namespace = creator_namespace(name)
        cluster.kubectl("create", "namespace", namespace)
        cluster.kubectl("apply", "-f", "-", input=program_binding(namespace))
    yield names
    for name in names:
        cluster.kubectl("delete", "namespace", creator_namespace(name), "--wait=false")


@pytest.fixture
async def kube_client(
    runtime_settings: Settings, runtime_kubeconfig: Path, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime_settings.model_copy(update={"kubeconfig": runtime_kubeconfig}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as http:
            yield http


async def _object(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    api = k8s.CustomObjectsApi(cluster.api)
    try:
        result: dict[str, Any] = await api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PROGRAM_PLURAL, name
        )
    except k8s.ApiException as error:
        if error.status == 404:
            return None
        raise
    return result


async def test_program_lifecycle_through_the_api(
    cluster: Cluster,
    database: Database,
    kube_client: httpx.AsyncClient,
    creator_namespaces: list[str],
) -> None:
    client = kube_client
    tenants = Tenants(database, client)
    a_name, b_name = creator_namespaces
    a = await tenants.signed_up(a_name)
    b = await tenants.signed_up(b_name)
    a_ns, b_ns = creator_namespace(a_name), creator_namespace(b_name)

    created = await client.post(
        "/v1/programs", json={"name": "couch-to-5k", "spec": SPEC}, headers=a.headers
    )
    assert created.status_code == 202, created.text
    assert created.headers["Location"] == "/v1/programs/couch-to-5k/status"
    assert created.json()["status"]["phase"] == "Pending"
    assert created.json()["program_id"]
    obj = await _object(cluster, a_ns, "couch-to-5k")
    assert obj is not None
    assert obj["spec"]["persona"]["name"] == "Robin"
    assert obj["metadata"]["labels"]["coachops.dev/creator"] == a_name
    assert await _object(cluster, b_ns, "couch-to-5k") is None
    duplicate = await client.post(
        "/v1/programs", json={"name": "couch-to-5k", "spec": SPEC}, headers=a.headers
    )
    assert duplicate.status_code == 409
    invalid = await client.post(
        "/v1/programs",
        json={"name": "Bad_Name", "spec": SPEC},
        headers=a.headers,
    )
    assert invalid.status_code == 422
    unknown_zone = await client.post(
        "/v1/programs",
        json={"name": "mars", "spec": {**SPEC, "proactive": {"timeZone": "Mars/Olympus"}}},
        headers=a.headers,
    )
    assert unknown_zone.status_code == 422, unknown_zone.text
    assert "not in the IANA time zone database" in unknown_zone.text
    assert await _object(cluster, a_ns, "mars") is None

    # No operator runs here: the object is Pending until one observes its generation.
    status = await client.get("/v1/programs/couch-to-5k/status", headers=a.headers)
    assert status.status_code == 200, status.text
    assert status.json()["phase"] == "Pending"
    assert status.json()["generation"] == obj["metadata"]["generation"]
    assert status.json()["observed_generation"] == 0
    assert status.json()["conditions"] == []

    updated = await client.patch(
        "/v1/programs/couch-to-5k", json={"title": "Run a 10k"}, headers=a.headers
    )
    assert updated.status_code == 202, updated.text
    obj = await _object(cluster, a_ns, "couch-to-5k")
    assert obj is not None
    assert obj["spec"]["title"] == "Run a 10k"
    assert obj["spec"]["persona"]["name"] == "Robin"
    assert updated.json()["status"]["phase"] == "Pending"  # a new generation to reconcile
    assert updated.json()["status"]["generation"] == obj["metadata"]["generation"]
    assert obj["metadata"]["generation"] == status.json()["generation"] + 1

    # B cannot see, change or delete A's program; its own namespace has no such object.
    for method, path, body in (
        ("GET", "/v1/programs/couch-to-5k", None),
        ("GET", "/v1/programs/couch-to-5k/status", None),
        ("PATCH", "/v1/programs/couch-to-5k", {"title": "pwned"}),
        ("DELETE", "/v1/programs/couch-to-5k", None),
    ):
        response = await client.request(method, path, json=body, headers=b.headers)
        assert response.status_code == 404, (method, response.text)
        assert a_name not in response.text
    obj = await _object(cluster, a_ns, "couch-to-5k")
    assert obj is not None
    assert obj["spec"]["title"] == "Run a 10k"

    deleted = await client.delete("/v1/programs/couch-to-5k", headers=a.headers)
    assert deleted.status_code == 202
    # Gone, or (no operator runs here) held only by the operator's finalizer, which the
    # admission policy in crds/ gives every new program.
    left = await _object(cluster, a_ns, "couch-to-5k")
    if left is not None:
        assert left["metadata"].get("deletionTimestamp"), left["metadata"]
        assert left["metadata"]["finalizers"] == [FINALIZER]
        await k8s.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            a_ns,
            PROGRAM_PLURAL,
            "couch-to-5k",
            [{"op": "remove", "path": "/metadata/finalizers"}],
        )
        assert await _object(cluster, a_ns, "couch-to-5k") is None


@pytest.mark.parametrize(
    ("verb", "resource", "where", "allowed"),
    [
        ("create", "coachingprograms.coachops.dev", "creator", True),
        ("patch", "coachingprograms.coachops.dev", "creator", True),
        ("delete", "coachingprograms.coachops.dev", "creator", True),
        ("get", "coachingprograms.coachops.dev", "creator", True),
        ("create", "coachingprograms.coachops.dev", "default", False),
        ("create", "coachingprograms.coachops.dev", "kube-system", False),
        ("create", "coachingprograms.coachops.dev", "coachops-system", False),
        ("patch", "coachingprograms.coachops.dev:status", "creator", False),
        ("create", "creators.coachops.dev", "cluster", False),
        ("get", "secrets", "creator", False),
        ("list", "configmaps", "creator", False),
        ("create", "pods", "creator", False),
        ("create", "rolebindings.rbac.authorization.k8s.io", "creator", False),
        ("create", "namespaces", "cluster", False),
        ("get", "secrets", "coachops-system", False),
        ("create", "serviceaccounts:token", "coachops-system", False),
    ],
)
async def test_runtime_service_account_can_do_nothing_else(
    cluster: Cluster,
    runtime_kubeconfig: Path,
    creator_namespaces: list[str],
    verb: str,
    resource: str,
    where: str,
    allowed: bool,
) -> None:
    namespace = {"creator": creator_namespace(creator_namespaces[0])}.get(where, where)
    scope = ["--all-namespaces=false"] if where == "cluster" else ["-n", namespace]
    resource, _, subresource = resource.partition(":")
    if subresource:
        scope.append(f"--subresource={subresource}")
    result = cluster.kubectl(
        "auth", "can-i", verb, resource, *scope, kubeconfig=runtime_kubeconfig, check=False
    )
    assert result.stdout.strip() == ("yes" if allowed else "no"), (verb, resource, where, result)
