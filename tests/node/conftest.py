"""The real node: the built image in a registry, containerd, runc, CNI, kubelet, kube-proxy
and a scheduler on the stack's control plane, and an operator that runs dedicated runtimes
from that image. Skipped where a node cannot run (not root, tools missing), with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from coachops_devstack.node import Node, node_supported, start_node_stack
from coachops_devstack.stack import Stack
from coachops_runtime.auth.keys import generate_key_file
from tests.conftest import Cluster
from tests.node.operator_pods import LEASE_SECONDS, OperatorPods, at_node, install, uninstall
from tests.operator_suite.conftest import crds as crds  # the CRDs, applied once


@dataclass
class NodeHandle:
    node: Node
    image: str
    figures: dict[str, float]


@pytest.fixture(scope="session")
async def node(stack: Stack) -> AsyncIterator[NodeHandle]:
    reason = node_supported()
    if reason is None and stack.cluster is None:
        reason = "the node joins the harness's own control plane"
    if reason is not None:
        pytest.skip(f"no node: {reason}")
    assert stack.cluster is not None
    started = await start_node_stack(
        stack.workdir / "node-stack",
        stack.cluster.kubeconfig,
        stack.cluster.api_port,
        {"postgres": stack.postgres.port, "redis": stack.redis.port, "chroma": stack.chroma.port},
    )
    handle = NodeHandle(started.node, started.image, dict(started.timings))
    try:
        yield handle
    finally:
        for what, value in handle.figures.items():  # shown with -s
            print(f"node figure: {what}: {value:.1f}")
        started.stop()


@pytest.fixture(scope="session")
def platform_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The platform's JWT keys: the shared runtime signs with them, the operator hands
    their public halves to dedicated runtimes."""
    directory = tmp_path_factory.mktemp("platform-jwt")
    generate_key_file(directory, "2026-01-01")
    return directory


@pytest.fixture(scope="package")
async def node_operator(
    stack: Stack, cluster: Cluster, crds: None, node: NodeHandle, platform_keys: Path
) -> AsyncIterator[OperatorPods]:
    """The operator as two pods from manifests/operator/ and the built image, its
    dedicated runtimes beside them: every store at the node's address (relayed to the
    stack's loopback ports), the platform's public keys from a Secret."""
    database = at_node(stack.postgres.operator_dsn)
    redis = at_node(stack.redis.url)
    channel_key = Fernet.generate_key().decode()
    handle = await install(
        cluster,
        node.node,
        node.image,
        secrets={
            "COACHOPS_OPERATOR_DATABASE_URL": database,
            "COACHOPS_OPERATOR_REDIS_URL": redis,
            "COACHOPS_CHANNEL_KEY": channel_key,
            "COACHOPS_OPERATOR_CHANNEL_KEY": channel_key,
        },
        keys_dir=platform_keys,
        env={
            "COACHOPS_OPERATOR_CHROMA_URL": at_node(stack.chroma.url),
            "COACHOPS_OPERATOR_OLLAMA_URL": "",
            "COACHOPS_OPERATOR_RUNTIME_IMAGE": node.image,
            "COACHOPS_OPERATOR_LEASE_SECONDS": str(LEASE_SECONDS),
            "COACHOPS_OPERATOR_DRIFT_INTERVAL": "5",
        },
    )
    node.figures.update(handle.figures)
    try:
        yield handle
    finally:
        await uninstall(handle)
