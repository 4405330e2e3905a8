"""Fixtures for the operator: the CRDs applied, the operator running as a real process.

The operator is cluster-wide, so one process (``operator``) serves every test of this
folder; tests that kill it or point it at other stores restart it through the fixture.
All replicas use leader election on the same Lease, so at most one reconciles.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_crds import constants as c
from coachops_devstack.crds import install_crds
from coachops_devstack.ollama import (
    EMBEDDING_PARAMETERS,
    OllamaStack,
    create_model,
    delete_model,
    push_model,
    start_ollama_stack,
)
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from tests.conftest import Cluster, kubectl_path

LEASE_SECONDS = 8
DRIFT_INTERVAL = 5


class OperatorProcess:
    """One ``python -m coachops_operator`` replica."""

    def __init__(
        self, stack: Stack, kubeconfig: Path, workdir: Path, base: dict[str, str], **env: str
    ) -> None:
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.identity = f"op-{uuid.uuid4().hex[:6]}"
        self.env = {
            "KUBECONFIG": str(kubeconfig),
            "PYTHONUNBUFFERED": "1",
            "COACHOPS_OPERATOR_DATABASE_URL": stack.postgres.operator_dsn,
            "COACHOPS_OPERATOR_REDIS_URL": stack.redis.url,
            "COACHOPS_OPERATOR_CHROMA_URL": stack.chroma.url,
            "COACHOPS_OPERATOR_LEASE_SECONDS": str(LEASE_SECONDS),
            "COACHOPS_OPERATOR_DRIFT_INTERVAL": str(DRIFT_INTERVAL),
            **base,
            **env,
        }
        self.process = ManagedProcess(
            f"operator-{self.identity}",
            [
                sys.executable,
                "-m",
                "coachops_operator",
                "--host",
                "127.0.0.1",
                "--liveness-port",
                str(self.liveness_port),
                "--metrics-port",
                str(self.metrics_port),
                "--identity",
                self.identity,
            ],
            workdir / "operator" / f"{self.identity}.log",
            env=self.env,
        )

    def start(self) -> OperatorProcess:
        self.process.start()
        return self

    async def role(self) -> str:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(f"http://127.0.0.1:{self.liveness_port}/healthz")
            return str(response.json()["role"])

    async def wait_leader(self, timeout: float = 60) -> float:  # noqa: ASYNC109
        async def leading() -> bool:
            return await self.role() == "leader"

        return await self.process.wait_ready(leading, timeout=timeout, interval=0.2)

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
            return response.text

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


class Operator:
    """The current operator replica, restartable with other settings."""

    def __init__(self, stack: Stack, cluster: Cluster, base: dict[str, str]) -> None:
        self.stack = stack
        self.cluster = cluster
        self.base = base  # settings every replica gets (Ollama, registry, channel key)
        self.current: OperatorProcess | None = None

    def new(self, **env: str) -> OperatorProcess:
        return OperatorProcess(
            self.stack, self.cluster.kubeconfig, self.cluster.workdir, self.base, **env
        )

    async def start(self, **env: str) -> OperatorProcess:
        self.current = self.new(**env).start()
        await self.current.wait_leader()
        return self.current

    async def restart(self, **env: str) -> OperatorProcess:
        if self.current is not None:
            self.current.stop()  # clean stop releases the Lease
        return await self.start(**env)

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="session")
async def crds(stack: Stack, cluster: Cluster) -> None:
    install_crds(kubectl_path(), cluster.kubeconfig)
    # The controller manager's quota controller counts a kind only once it has found it:
    # at its start, then every 30 s. Until then no quota counts CoachingPrograms (and one
    # synced meanwhile waits for a full resync). Wait until a new quota counts them; a
    # controller manager that has not found them within a few seconds is started again.
    ns = f"quota-warmup-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(cluster.api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    hard = {f"count/{c.PROGRAM_PLURAL}.{c.GROUP}": "1"}

    async def counted(name: str) -> bool:
        quota = await core.read_namespaced_resource_quota(name, ns)
        return bool(quota.status and quota.status.used and set(hard) <= set(quota.status.used))

    deadline = time.monotonic() + 90
    attempt = 0
    while True:
        attempt += 1
        name = f"warmup-{attempt}"
        await core.create_namespaced_resource_quota(
            ns,
            client.V1ResourceQuota(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1ResourceQuotaSpec(hard=hard),
            ),
        )
        with contextlib.suppress(AssertionError):
            await eventually(functools.partial(counted, name), 5, interval=0.1)
            break
        assert time.monotonic() < deadline, "the quota controller never counted CoachingPrograms"
        await core.delete_namespaced_resource_quota(name, ns)
        if attempt == 1 and stack.cluster is not None:
            await stack.cluster.restart_controller_manager()
    await core.delete_namespace(ns)


# Package scope: the operator must be gone before other suites (the runtime's tests write
# CoachingPrograms and expect no controller to put finalizers on them).
@dataclass(frozen=True)
class Models:
    """The suite's Ollama and model registry, and the settings that point the operator there."""

    stack: OllamaStack
    channel_key: str

    @property
    def registry(self) -> str:
        return self.stack.registry_address

    def env(self) -> dict[str, str]:
        return {
            "COACHOPS_OPERATOR_OLLAMA_URL": self.stack.base_url,
            "COACHOPS_OPERATOR_MODEL_REGISTRY": self.registry,
            "COACHOPS_OPERATOR_MODEL_REGISTRY_INSECURE": "true",
            "COACHOPS_CHANNEL_KEY": self.channel_key,
            "COACHOPS_OPERATOR_WEBHOOK_BASE_URL": WEBHOOK_BASE,
        }

    def registry_log(self) -> str:
        return (self.stack.workdir / "logs" / "registry.log").read_text(errors="replace")

    def blob_gets(self, repository: str) -> dict[str, int]:
        """Completed blob downloads (200) of ``repository`` seen by the registry, per digest."""
        found: dict[str, int] = {}
        marker = f"GET /v2/{repository}/blobs/"
        for line in self.registry_log().splitlines():
            if marker in line:
                digest, status = line.split(marker, 1)[1].split()[:2]
                if status in ("200", "206"):
                    found[digest] = found.get(digest, 0) + 1
        return found

    async def push_unique(self, padding: int) -> str:
        """A model only the registry has, whose GGUF blob no other model shares: the tiny
        chat model's file plus ``padding`` random bytes (ignored by GGUF readers), pushed
        under a new name and deleted from Ollama. Returns its name without the registry."""
        name = f"coachops/t-{uuid.uuid4().hex[:8]}:latest"
        full = f"{self.registry}/{name}"
        data = self.stack.chat.path.read_bytes() + os.urandom(padding)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        async with httpx.AsyncClient(base_url=self.stack.base_url, timeout=120) as http:
            response = await http.post(f"/api/blobs/{digest}", content=data)
            response.raise_for_status()
            response = await http.post(
                "/api/create",
                json={"model": full, "files": {"model.gguf": digest}, "stream": False},
            )
            response.raise_for_status()
            await push_model(http, full)
            await delete_model(http, full)
        return name

    async def present(self) -> set[str]:
        async with httpx.AsyncClient(base_url=self.stack.base_url, timeout=10) as http:
            response = await http.get("/api/tags")
            return {m["model"] for m in response.json()["models"]}

    def stop_registry(self) -> None:
        assert self.stack.registry_process is not None
        self.stack.registry_process.stop()

    async def start_registry(self) -> None:
        process = self.stack.registry_process
        assert process is not None
        process.start()

        async def ready() -> bool:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{self.stack.registry_url}/v2/")).status_code == 200

        await process.wait_ready(ready, 30)


WEBHOOK_BASE = "https://hooks.example.test"


@pytest.fixture(scope="session")
async def models(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Models]:
    """Ollama and the registry: the registry holds the default chat and embedding models;
    Ollama holds only the embedding model (the first program pulls the chat model)."""
    stack = await start_ollama_stack(tmp_path_factory.mktemp("ollama"), instruct=False)
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=120) as http:
            name = f"{stack.registry_address}/coachops/minilm:latest"
            await create_model(http, name, stack.embedding, parameters=EMBEDDING_PARAMETERS)
            await push_model(http, name)
        yield Models(stack, Fernet.generate_key().decode())
    finally:
        stack.stop()


@pytest.fixture(scope="package")
async def operator(
    stack: Stack, cluster: Cluster, crds: None, models: Models
) -> AsyncIterator[Operator]:
    handle = Operator(stack, cluster, models.env())
    await handle.start()
    try:
        yield handle
    finally:
        handle.stop()


# ---------------------------------------------------------------- helpers


def creator_manifest(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": f"Coach {name}",
        "contact": {"name": "Test", "email": f"{name}@example.com"},
        **spec,
    }
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.CREATOR_KIND,
        "metadata": {"name": name},
        "spec": body,
    }


def program_manifest(creator: str, name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": f"Program {name}", "persona": {"name": "Robin"}, **spec}
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROGRAM_KIND,
        "metadata": {"name": name, "namespace": c.creator_namespace(creator)},
        "spec": body,
    }


class Kube:
    """Small async helpers for the tests."""

    def __init__(self, cluster: Cluster) -> None:
        self.api = cluster.api
        self.objects = client.CustomObjectsApi(cluster.api)
        self.core = client.CoreV1Api(cluster.api)

    async def create_creator(self, name: str, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.objects.create_cluster_custom_object(
            c.GROUP, c.VERSION, c.CREATOR_PLURAL, creator_manifest(name, **spec)
        )
        return result

    async def creator(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.objects.get_cluster_custom_object(
                c.GROUP, c.VERSION, c.CREATOR_PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return result

    async def patch_creator(self, name: str, spec: dict[str, Any]) -> None:
        await self.objects.patch_cluster_custom_object(
            c.GROUP,
            c.VERSION,
            c.CREATOR_PLURAL,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]
        )

    async def delete_creator(self, name: str) -> None:
        try:
            await self.objects.delete_cluster_custom_object(
                c.GROUP, c.VERSION, c.CREATOR_PLURAL, name
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def create_program(self, creator: str, name: str, **spec: Any) -> None:
        await self.objects.create_namespaced_custom_object(
            c.GROUP,
            c.VERSION,
            c.creator_namespace(creator),
            c.PROGRAM_PLURAL,
            program_manifest(creator, name, **spec),
        )

    async def patch_program(self, creator: str, name: str, spec: dict[str, Any]) -> None:
        """A merge patch of the program's spec, as ``kubectl patch --type merge`` sends."""
        await self.objects.patch_namespaced_custom_object(
            c.GROUP,
            c.VERSION,
            c.creator_namespace(creator),
            c.PROGRAM_PLURAL,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]
        )

    async def program(self, creator: str, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.objects.get_namespaced_custom_object(
                c.GROUP, c.VERSION, c.creator_namespace(creator), c.PROGRAM_PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return result

    async def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        secret = await self.core.read_namespaced_secret(name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        found = await self.core.list_event_for_all_namespaces(
            field_selector=f"involvedObject.name={name}"
        )
        return [(e.type, e.reason, e.message or "") for e in found.items]

    async def reasons_eventually(
        self,
        name: str,
        expected: set[str],
        timeout: float = 15,  # noqa: ASYNC109
    ) -> set[str]:
        """The Event reasons of ``name`` once they include ``expected``: the operator posts
        Events in the background, after the status patch that a test may already see."""

        async def posted() -> set[str]:
            reasons = {reason for _, reason, _ in await self.events(name)}
            return reasons if expected <= reasons else set()

        return set(await eventually(posted, timeout))

    async def messages_eventually(
        self,
        name: str,
        reason: str,
        timeout: float = 15,  # noqa: ASYNC109
    ) -> list[str]:
        """The messages of ``name``'s Events with ``reason``, once there is one (posted in
        the background, like those of ``reasons_eventually``)."""

        async def posted() -> list[str]:
            return [m for _, r, m in await self.events(name) if r == reason]

        return list(await eventually(posted, timeout))


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for item in (obj or {}).get("status", {}).get("conditions", []):
        if item["type"] == type_:
            return dict(item)
    return {}


async def eventually(
    check: Callable[[], Awaitable[Any]],
    timeout: float = 30,  # noqa: ASYNC109
    interval: float = 0.25,
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"not true after {timeout:.0f} s; last value: {last!r}")


@dataclass
class Peer:
    """Answers each request with the next of ``answers`` (then the last one again)."""

    url: str = ""
    answers: list[Callable[[web.Request], web.Response]] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path, request.headers.get("Authorization", "")))
        answer = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return answer(request)


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    found = Peer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}"
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster)


@pytest.fixture
async def creators(kube: Kube) -> AsyncIterator[list[str]]:
    """Names of Creators a test made; deleted (without waiting) afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        await kube.delete_creator(name)


@pytest.fixture
def new_creator_name() -> Callable[[str], str]:
    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


async def wait_ready(
    kube: Kube,
    name: str,
    timeout: float = 60,  # noqa: ASYNC109
) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        obj = await kube.creator(name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    try:
        result: dict[str, Any] = await eventually(ready, timeout)
    except AssertionError:
        obj = await kube.creator(name)
        raise AssertionError(
            f"Creator {name} not Ready: {json.dumps((obj or {}).get('status'), indent=1)}"
        ) from None
    return result


@pytest.fixture
async def superuser(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.postgres.superuser_dsn)
    try:
        yield conn
    finally:
        await conn.close()
