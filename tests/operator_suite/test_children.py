"""The operator's view of its children: listed at start, then kept current by watches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from kubernetes_asyncio import client

from coachops_crds import constants as c
from coachops_operator import kube
from coachops_operator.children import Children
from tests.conftest import Cluster
from tests.operator_suite.conftest import eventually


@pytest.fixture
async def api(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[kube.KubeClient]:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    api = kube.KubeClient.from_environment()
    yield api
    await api.close()


def account(namespace: str, name: str, creator: str, run: str) -> client.V1ServiceAccount:
    labels = {c.LABEL_CREATOR: creator, "test-run": run}
    return client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=labels)
    )


async def until(predicate: Callable[[], object]) -> None:
    async def check() -> object:
        return predicate()

    await eventually(check, timeout=15)


async def test_children_are_listed_then_watched(
    api: kube.KubeClient, cluster: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api)
    run = uuid.uuid4().hex[:8]
    await core.create_namespaced_service_account(namespace, account(namespace, "before", "a", run))
    children = Children(api, [("v1", "ServiceAccount")], {}, f"test-run={run}")
    await children.start()
    try:
        # Listed before start() returns: the first lookups are already true.
        assert children.find("a", "ServiceAccount", namespace, "before") is not None
        await core.create_namespaced_service_account(
            namespace, account(namespace, "after", "b", run)
        )
        await until(lambda: children.find("b", "ServiceAccount", namespace, "after"))
        assert set(children.of("a")) == {("ServiceAccount", namespace, "before")}
        # Relabelled to another creator: it moves.
        await core.patch_namespaced_service_account(
            "before", namespace, {"metadata": {"labels": {c.LABEL_CREATOR: "b"}}}
        )
        await until(lambda: len(children.of("b")) == 2)
        assert children.of("a") == {}
        await core.delete_namespaced_service_account("after", namespace)
        await until(lambda: ("ServiceAccount", namespace, "after") not in children.of("b"))
        # Another object outside the selector is not kept.
        await core.create_namespaced_service_account(
            namespace, account(namespace, "other", "a", "another-run")
        )
        await asyncio.sleep(1)
        assert children.of("a") == {}
    finally:
        await children.stop()


async def test_a_refused_watch_lists_again(
    api: kube.KubeClient, cluster: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api)
    run = uuid.uuid4().hex[:8]
    children = Children(api, [("v1", "ServiceAccount")], {}, f"test-run={run}")
    await core.create_namespaced_service_account(namespace, account(namespace, "x", "a", run))
    # The API refuses a watch from a resourceVersion it cannot parse (as it refuses an
    # expired one with 410 Gone): the list that follows fills the gap, the watch resumes.
    watch = asyncio.create_task(children._watch("v1", "ServiceAccount", "not-a-version"))
    try:
        await until(lambda: children.find("a", "ServiceAccount", namespace, "x"))
        await core.create_namespaced_service_account(namespace, account(namespace, "y", "a", run))
        await until(lambda: children.find("a", "ServiceAccount", namespace, "y"))
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
