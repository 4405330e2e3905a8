"""The developer's local stack: the shared stack plus the operator, the runtime, the worker
(which delivers e-mail to Mailpit), a Prometheus that scrapes those three and evaluates the
chart's alerts, and a sample.

Logs of the operator, the runtime and the worker are streamed to this terminal with a name
prefix; every other component logs to a file under the state directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from coachops_devstack.controlplane import controlplane_bin
from coachops_devstack.crds import install_crds
from coachops_devstack.kubeconfig import service_account_kubeconfig
from coachops_devstack.node import NODE_IP, NodeStack, start_node_stack
from coachops_devstack.ollama import (
    EMBEDDING_PARAMETERS,
    OllamaStack,
    create_model,
    delete_model,
    push_model,
    start_ollama_stack,
)
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.prometheus import Prometheus
from coachops_devstack.stack import Stack, new_workdir, start_stack

SAMPLES = REPO_ROOT / "manifests" / "samples"
RUNTIME_RBAC = REPO_ROOT / "manifests" / "runtime-rbac.yaml"
OPERATOR_RBAC = REPO_ROOT / "manifests" / "operator" / "rbac.yaml"
SYSTEM_NAMESPACE = "coachops-system"


class LocalStack:
    def __init__(
        self,
        api_port: int,
        state_dir: Path | None,
        ollama_host: str | None,
        *,
        node: bool = False,
    ) -> None:
        self.api_port = api_port
        self.with_node = node
        self._node: NodeStack | None = None
        self.workdir = state_dir or new_workdir()
        self.ollama_host = ollama_host
        self.stack: Stack | None = None
        self.processes: list[ManagedProcess] = []
        self._tails: list[asyncio.Task[None]] = []
        self._ollama: OllamaStack | None = None
        self.metrics_ports = {"operator": free_port(), "worker": free_port()}
        self.prometheus: Prometheus | None = None
        self.started = time.monotonic()
        # Encrypts channel credentials in PostgreSQL; the operator and the runtime share it.
        self.channel_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

    @property
    def kubeconfig(self) -> Path:
        assert self.stack is not None
        assert self.stack.cluster is not None
        return self.stack.cluster.kubeconfig

    def kubectl(self, *args: str, kubeconfig: Path | None = None) -> str:
        result = subprocess.run(
            [
                str(controlplane_bin("kubectl")),
                f"--kubeconfig={kubeconfig or self.kubeconfig}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    async def start(self) -> None:
        print(f"starting the local stack in {self.workdir} ...", flush=True)
        self.stack = await start_stack(self.workdir, keep_workdir=True)
        print(self.stack.timings.table(), flush=True)
        self.write_superuser_dsn()
        await self._start_ollama()
        if self.with_node:
            await self._start_node()
        install_crds(controlplane_bin("kubectl"), self.kubeconfig)
        if self.stack.cluster is not None:
            # Or the sample Creator's quota waits a minute or more to count its programs.
            await self.stack.cluster.restart_controller_manager()
        await self._start_operator()
        await self._start_runtime()
        self._start_worker()
        await self._start_prometheus()
        if SAMPLES.exists():
            # A program lives in its creator's namespace, which the operator creates: apply
            # the Creator, wait for its namespace, then the program.
            print(self.kubectl("apply", "-f", str(SAMPLES / "creator.yaml")), end="", flush=True)
            self.kubectl(
                "wait", "--for=condition=NamespaceReady", "--all", "--timeout=120s", "creators"
            )
            print(self.kubectl("apply", "-f", str(SAMPLES / "program.yaml")), end="", flush=True)

    def wait_for_samples(self, timeout_seconds: int = 120) -> str:
        """Wait until the sample Creator and program are Ready; returns what kubectl lists."""
        for kind in ("creators", "coachingprograms"):
            self.kubectl(
                "wait",
                "--for=condition=Ready",
                "--all",
                "--all-namespaces",
                f"--timeout={timeout_seconds}s",
                kind,
            )
        return self.kubectl("get", "crds") + "\n" + self.kubectl("get", "coachops", "-A")

    async def _start_ollama(self) -> None:
        if self.ollama_host:
            return
        # Blob downloads unpaced: the operator pulls the sample's 98 MB model in seconds.
        self._ollama = await start_ollama_stack(
            self.workdir / "ollama", pull_chat=True, blob_rate="0"
        )
        self.ollama_host = self._ollama.base_url
        # The default embedding model, under the name programs use (coachops/minilm:latest
        # from the local registry), kept in Ollama and pushed so a pull finds it too.
        name = f"{self._ollama.registry_address}/coachops/minilm:latest"
        async with httpx.AsyncClient(base_url=self.ollama_host, timeout=300) as client:
            await create_model(
                client, name, self._ollama.embedding, parameters=EMBEDDING_PARAMETERS
            )
            await push_model(client, name)
            # SmolLM2 stays in the registry only: the sample program's model is pulled by
            # the operator, as a program's model is in a cluster.
            await delete_model(client, self._ollama.instruct_model)

    async def _start_node(self) -> None:
        """A kubelet with containerd (docs/node.md), so dedicated runtimes run as pods."""
        assert self.stack is not None
        assert self.stack.cluster is not None
        print("starting the node (the first run builds it and the image) ...", flush=True)
        stores = {
            "postgres": self.stack.postgres.port,
            "redis": self.stack.redis.port,
            "chroma": self.stack.chroma.port,
        }
        self._node = await start_node_stack(
            self.workdir / "node-stack",
            self.kubeconfig,
            self.stack.cluster.api_port,
            stores,
        )
        for what, seconds in self._node.timings.items():
            print(f"  {what:<26}{seconds:6.2f} s", flush=True)

    def _node_env(self) -> dict[str, str]:
        """The operator's settings for dedicated runtimes on the node."""
        keys = self.workdir / "jwt-keys"
        keys.mkdir(exist_ok=True)
        env = {"COACHOPS_OPERATOR_JWT_KEYS_DIR": str(keys)}
        if self._node is not None:
            assert self.stack is not None
            env.update(
                {
                    "COACHOPS_OPERATOR_RUNTIME_IMAGE": self._node.image,
                    "COACHOPS_OPERATOR_DATABASE_HOST": NODE_IP,
                    "COACHOPS_OPERATOR_REDIS_HOST": NODE_IP,
                    "COACHOPS_OPERATOR_RUNTIME_CHROMA_URL": (
                        f"http://{NODE_IP}:{self.stack.chroma.port}"
                    ),
                }
            )
        return env

    def _store_env(self) -> dict[str, str]:
        assert self.stack is not None
        return {"PYTHONUNBUFFERED": "1", "KUBECONFIG": str(self.kubeconfig)}

    async def _restricted_kubeconfig(self, rbac: Path, service_account: str) -> Path:
        """Apply a component's RBAC and return a kubeconfig acting as its ServiceAccount."""
        self.kubectl("apply", "-f", str(rbac))
        return await service_account_kubeconfig(
            self.kubeconfig, SYSTEM_NAMESPACE, service_account, self.workdir / "kubeconfigs"
        )

    async def _start_operator(self) -> None:
        assert self.stack is not None
        env = {
            **self._store_env(),
            # The operator acts with exactly the permissions its manifests grant it.
            "KUBECONFIG": str(
                await self._restricted_kubeconfig(OPERATOR_RBAC, "coachops-operator")
            ),
            "COACHOPS_OPERATOR_DATABASE_URL": self.stack.postgres.operator_dsn,
            "COACHOPS_OPERATOR_REDIS_URL": self.stack.redis.url,
            "COACHOPS_OPERATOR_CHROMA_URL": self.stack.chroma.url,
            "COACHOPS_OPERATOR_OLLAMA_URL": self.ollama_host or "",
            # Model names without a registry host come from the local registry.
            "COACHOPS_OPERATOR_MODEL_REGISTRY": (
                self._ollama.registry_address if self._ollama else ""
            ),
            "COACHOPS_OPERATOR_MODEL_REGISTRY_INSECURE": "true",
            "COACHOPS_CHANNEL_KEY": self.channel_key,
            "COACHOPS_OPERATOR_WEBHOOK_BASE_URL": f"http://127.0.0.1:{self.api_port}",
            **self._node_env(),
        }
        operator = ManagedProcess(
            "operator",
            [
                sys.executable,
                "-m",
                "coachops_operator",
                "--host",
                "127.0.0.1",
                "--liveness-port",
                str(free_port()),
                "--metrics-port",
                str(self.metrics_ports["operator"]),
            ],
            self.workdir / "logs" / "operator.log",
            env=env,
        )
        self._run_streamed(operator)

    async def _start_runtime(self) -> None:
        assert self.stack is not None
        # The runtime may write CoachingPrograms and nothing else, as in a cluster.
        kubeconfig = await self._restricted_kubeconfig(RUNTIME_RBAC, "coachops-runtime")
        env = {**self._runtime_env(), "KUBECONFIG": str(kubeconfig)}
        runtime = ManagedProcess(
            "runtime",
            [
                sys.executable,
                "-m",
                "coachops_runtime",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
            ],
            self.workdir / "logs" / "runtime.log",
            env=env,
        )
        self._run_streamed(runtime)

        async def healthy() -> bool:
            async with httpx.AsyncClient(timeout=1) as client:
                response = await client.get(f"http://127.0.0.1:{self.api_port}/livez")
                return response.status_code == 200

        await runtime.wait_ready(healthy, timeout=60)

    def _runtime_env(self) -> dict[str, str]:
        """Settings shared by the runtime and the worker (``COACHOPS_*``)."""
        assert self.stack is not None
        keys = self.workdir / "jwt-keys"
        keys.mkdir(exist_ok=True)
        return {
            **self._store_env(),
            "COACHOPS_ENVIRONMENT": "development",
            "COACHOPS_DATABASE_URL": self.stack.postgres.runtime_dsn,
            "COACHOPS_REDIS_URL": self.stack.redis.url,
            "COACHOPS_CHROMA_URL": self.stack.chroma.url,
            "COACHOPS_OLLAMA_URL": self.ollama_host or "",
            # The worker names models as the operator pulled them (from the local registry).
            "COACHOPS_MODEL_REGISTRY": self._ollama.registry_address if self._ollama else "",
            "COACHOPS_CHANNEL_KEY": self.channel_key,
            "COACHOPS_JWT_KEYS_DIR": str(keys),
            "COACHOPS_SECRET_KEY": secrets.token_urlsafe(32),
            "COACHOPS_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "COACHOPS_SMTP_HOST": "127.0.0.1",
            "COACHOPS_SMTP_PORT": str(self.stack.mailpit.smtp_port),
            "COACHOPS_SMTP_TLS": "none",
        }

    def _start_worker(self) -> None:
        """The outbox worker: delivers queued e-mail to Mailpit."""
        worker = ManagedProcess(
            "worker",
            [sys.executable, "-m", "coachops_runtime.worker"],
            self.workdir / "logs" / "worker.log",
            env={
                **self._runtime_env(),
                "COACHOPS_WORKER_METRICS_PORT": str(self.metrics_ports["worker"]),
            },
        )
        self._run_streamed(worker)

    async def _start_prometheus(self) -> None:
        """Scrapes the three processes (the runtime serves /metrics on its API port)."""
        targets = {
            "coachops-operator": f"127.0.0.1:{self.metrics_ports['operator']}",
            "coachops-runtime": f"127.0.0.1:{self.api_port}",
            "coachops-worker": f"127.0.0.1:{self.metrics_ports['worker']}",
        }
        self.prometheus = Prometheus(self.workdir / "prometheus", targets)
        await self.prometheus.start()

    @property
    def superuser_dsn_file(self) -> Path:
        return self.workdir / "superuser.dsn"

    def write_superuser_dsn(self) -> None:
        """The PostgreSQL superuser's DSN in a file only this user can read."""
        assert self.stack is not None
        self.superuser_dsn_file.unlink(missing_ok=True)
        fd = os.open(self.superuser_dsn_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(self.stack.postgres.superuser_dsn + "\n")

    def _run_streamed(self, process: ManagedProcess) -> None:
        process.start()
        self.processes.append(process)
        self._tails.append(asyncio.create_task(_tail(process)))

    def instructions(self) -> str:
        assert self.stack is not None
        mail, postgres = self.stack.mailpit, self.stack.postgres
        prometheus = self.prometheus.url if self.prometheus else "not running"
        return f"""
coachops local stack is up ({time.monotonic() - self.started:.1f} s).

  kubectl:   export KUBECONFIG={self.kubeconfig}
             export PATH={controlplane_bin("kubectl").parent}:$PATH
             kubectl get crds
             kubectl get coachops -A
  API:       http://127.0.0.1:{self.api_port}/docs   (OpenAPI at /openapi.json)
  Postgres:  {postgres.superuser_dsn.split("@")[1]} (superuser DSN in {self.superuser_dsn_file})
  Redis:     127.0.0.1:{self.stack.redis.port}
  Chroma:    {self.stack.chroma.url}
  Mailpit:   {mail.url}/view/latest.html   (the newest e-mail; .txt for plain text)
             {mail.url}/api/v1/messages   (every e-mail, through Mailpit's API)
  Metrics:   {prometheus}/api/v1/targets   (Prometheus: operator, runtime, worker)
             {prometheus}/api/v1/alerts    (the chart's alerts, evaluated)
  Ollama:    {self.ollama_host or "not running"}
  Node:      {self._node.image if self._node else "none (scripts/up.sh --node runs one)"}
  Logs:      {self.workdir / "logs"}

Ctrl-C stops everything.
"""

    async def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        for process in reversed(self.processes):
            process.stop()
        for task in self._tails:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ollama is not None:
            self._ollama.stop()
        if self._node is not None:
            self._node.stop()
        if self.stack is not None:
            self.stack.stop()


async def _tail(process: ManagedProcess) -> None:
    """Print a process's log lines with its name in front, as they are written."""
    while not process.log_path.exists():
        await asyncio.sleep(0.1)
    with process.log_path.open(errors="replace") as log:
        while True:
            line = log.readline()
            if line:
                print(f"{process.name:>8} | {line}", end="", flush=True)
            else:
                await asyncio.sleep(0.2)
