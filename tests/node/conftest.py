"""The real node: the built image in a registry, containerd, runc, CNI, kubelet, kube-proxy
and a scheduler on the stack's control plane, and an operator that runs dedicated runtimes
from that image. Skipped where a node cannot run (not root, tools missing), with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coachops_devstack.node import NODE_IP, Node, node_supported, start_node_stack
from coachops_devstack.stack import Stack
from coachops_runtime.auth.keys import generate_key_file
from tests.conftest import Cluster
from tests.operator_suite.conftest import Operator
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
    try:
        yield NodeHandle(started.node, started.image, dict(started.timings))
    finally:
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
) -> AsyncIterator[Operator]:
    """The operator as a process, its dedicated runtimes on the node: stores at the node's
    address (relayed to the stack's loopback ports), the built image, the platform keys."""
    handle = Operator(
        stack,
        cluster,
        {
            "COACHOPS_OPERATOR_RUNTIME_IMAGE": node.image,
            "COACHOPS_OPERATOR_DATABASE_HOST": NODE_IP,
            "COACHOPS_OPERATOR_REDIS_HOST": NODE_IP,
            "COACHOPS_OPERATOR_JWT_KEYS_DIR": str(platform_keys),
        },
    )
    await handle.start()
    try:
        yield handle
    finally:
        handle.stop()
