"""Fixtures for ``kubectl coachops``: the real apiserver with the operator running, the
runtime served on loopback with a knowledge worker, and the plugin run through kubectl.

The plugin runs as kubectl runs it: ``kubectl coachops ...`` with the project's console
script on PATH (kubectl finds ``kubectl-coachops`` there), in a subprocess, so the
runtime served by this event loop answers it meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from coachops_crds import constants as c
from coachops_devstack.crds import install_crds
from coachops_devstack.ollama import (
    EMBEDDING_PARAMETERS,
    create_model,
    push_model,
    start_ollama_stack,
)
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_kubectl.app import app
from coachops_runtime.app import create_app
from coachops_runtime.auth.keys import generate_key_file
from coachops_runtime.kit.settings import Settings
from tests.conftest import Cluster, Database, kubectl_path
from tests.operator_suite.conftest import (
    Kube,
    Models,
    condition,
    creators,
    eventually,
    kube,
    new_creator_name,
    operator,
)
from tests.runtime.conftest import PASSWORD, Creator, Tenants

__all__ = ["creators", "kube", "new_creator_name", "operator"]

BIN = Path(sys.executable).parent  # where the project's console scripts are installed


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


Plugin = Callable[..., Awaitable[Ran]]


async def invoke(*args: str, env: dict[str, str | None] | None = None) -> Ran:
    """The plugin's commands in this process (no interpreter start-up: for the many error
    cases), in a thread with its own event loop; ``env`` as for ``plugin``."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def plugin(cluster: Cluster) -> Plugin:
    """Runs ``kubectl coachops ARGS`` against the test cluster (``env`` adds or, with
    None, removes variables)."""

    async def run(
        *args: str, env: dict[str, str | None] | None = None, seconds: float = 180
    ) -> Ran:
        environ = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(cluster.kubeconfig),
            "COLUMNS": "400",  # rich wraps tables to this width when output is piped
        }
        for key, value in (env or {}).items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        process = await asyncio.create_subprocess_exec(
            str(kubectl_path()),
            "coachops",
            *args,
            env=environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
        assert process.returncode is not None
        return Ran(process.returncode, out.decode(), err.decode())

    return run


async def creator_ready(
    kube: Kube, creators: list[str], name: str, reason: str = "Reconciled", **spec: object
) -> None:
    """A new Creator, once its Ready condition has ``reason`` (Reconciled: Ready; a
    suspended one is provisioned with Ready False, Suspended)."""
    creators.append(name)
    await kube.create_creator(name, **spec)

    async def settled() -> bool:
        return condition(await kube.creator(name), "Ready").get("reason") == reason

    await eventually(settled, 90)


@pytest.fixture(scope="package")
def crds(cluster: Cluster) -> None:
    """The CRDs, installed (idempotent). The operator suite's fixture also waits for the
    quota controller to count programs, which nothing here needs."""
    install_crds(kubectl_path(), cluster.kubeconfig)


async def program_synced(kube: Kube, creator: str, name: str, **spec: object) -> None:
    """A program the operator has copied into the database (the runtime can serve it)."""
    await kube.create_program(creator, name, **spec)

    async def synced() -> bool:
        return condition(await kube.program(creator, name), "Synced").get("status") == "True"

    await eventually(synced, 60)


@pytest.fixture(scope="package")
async def models(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Models]:
    """The operator suite's Ollama and registry (the embedding model pushed, Ollama holding
    it), for this folder only: stopped when its tests end instead of with the session."""
    ollama = await start_ollama_stack(tmp_path_factory.mktemp("ollama"), instruct=False)
    try:
        async with httpx.AsyncClient(base_url=ollama.base_url, timeout=120) as http:
            name = f"{ollama.registry_address}/coachops/minilm:latest"
            await create_model(http, name, ollama.embedding, parameters=EMBEDDING_PARAMETERS)
            await push_model(http, name)
        yield Models(ollama, Fernet.generate_key().decode())
    finally:
        ollama.stop()


@dataclass
class Runtime:
    """The runtime on the operator's database, served on loopback."""

    url: str
    http: httpx.AsyncClient
    tenants: Tenants

    async def api_key(self, creator: str) -> str:
        """Signs the Creator's contact up and returns a new API key of theirs."""
        account = Creator(creator, c.tenant_id(creator), f"{creator}@example.com")
        answer = await self.http.post(
            "/v1/auth/signup",
            json={"creator": creator, "email": account.email, "password": PASSWORD},
        )
        assert answer.status_code == 202, answer.text
        token = await self.tenants.outbox(account, "verify_email")
        answer = await self.http.post("/v1/auth/verify", json={"token": token})
        assert answer.status_code == 204, answer.text
        answer = await self.http.post(
            "/v1/auth/login", json={"email": account.email, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        answer = await self.http.post(
            "/v1/api-keys",
            json={"name": "plugin", "scopes": ["programs:read", "programs:write"]},
            headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])


@pytest.fixture
async def runtime(stack: Stack, tmp_path: Path) -> AsyncIterator[Runtime]:
    keys = tmp_path / "jwt-keys"
    generate_key_file(keys, "2026-01-01")
    settings = Settings(
        environment="development",
        database_url=stack.postgres.runtime_dsn,
        redis_url=stack.redis.url,
        jwt_keys_dir=keys,
        kubeconfig=None,
        tenant_cache_seconds=0,
    )
    app = create_app(settings)
    port = free_port()
    served = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(served.serve())
    async with asyncio.timeout(30):
        while not served.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    pg = stack.postgres
    database = Database("coachops", pg.superuser_dsn, pg.owner_dsn, pg.runtime_dsn)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Runtime(url, http, Tenants(database, http))
    finally:
        served.should_exit = True
        await task


@pytest.fixture
async def worker(stack: Stack, models: Models, tmp_path: Path) -> AsyncIterator[ManagedProcess]:
    """The runtime's worker on the operator's database, ingesting with Chroma and Ollama."""
    process = ManagedProcess(
        "plugin-worker",
        [sys.executable, "-m", "coachops_runtime.worker"],
        tmp_path / "worker.log",
        env={
            "COACHOPS_DATABASE_URL": stack.postgres.runtime_dsn,
            "COACHOPS_REDIS_URL": stack.redis.url,
            "COACHOPS_CHROMA_URL": stack.chroma.url,
            "COACHOPS_OLLAMA_URL": models.stack.base_url,
            "COACHOPS_MODEL_REGISTRY": models.registry,
            "COACHOPS_WORKER_POLL_SECONDS": "0.2",
            "KUBECONFIG": "",
            "PYTHONUNBUFFERED": "1",
        },
    )
    process.start()

    async def started() -> bool:
        return "worker started" in process.log_path.read_text(errors="replace")

    await process.wait_ready(started, timeout=30)
    try:
        yield process
    finally:
        process.stop()
