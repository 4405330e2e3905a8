"""The control plane is real: CRDs establish, the garbage collector runs, RBAC denies."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_devstack.paths import REPO_ROOT
from tests.conftest import Cluster


async def test_crds_apply_and_become_established(cluster: Cluster) -> None:
    applied = cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    assert "creators.coachops.dev" in applied.stdout
    assert "coachingprograms.coachops.dev" in applied.stdout
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/creators.coachops.dev",
        "crd/coachingprograms.coachops.dev",
    )
    listed = cluster.kubectl("get", "crds", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/creators.coachops.dev" in listed


async def test_garbage_collector_deletes_owned_objects(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    owner = await core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    await core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="owned", owner_references=[reference])
        ),
    )
    await core.delete_namespaced_config_map("owner", namespace)

    async def owned_exists() -> bool:
        try:
            await core.read_namespaced_config_map("owned", namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    for _ in range(150):
        if not await owned_exists():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the garbage collector did not delete the owned ConfigMap in 30 s")


async def test_restricted_service_account_cannot_read_other_namespaces_secrets(
    cluster: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api)
    await core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="restricted"))
    )
    await core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(generate_name="other-"),
            string_data={"token": "not-for-you"},
        ),
    )
    kubeconfig = await cluster.service_account_kubeconfig(namespace, "restricted")

    denied = cluster.kubectl("get", "secrets", "-n", "default", kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:restricted" in denied.stderr
    # The same client is authenticated: it may ask what it can do.
    allowed = cluster.kubectl(
        "auth", "can-i", "get", "secrets", "-n", "default", kubeconfig=kubeconfig, check=False
    )
    assert allowed.stdout.strip() == "no"
