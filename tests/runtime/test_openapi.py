"""The committed OpenAPI document matches the code, and the running API honours it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from coachops_crds.constants import creator_namespace
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_runtime.openapi import render
from tests.conftest import Cluster, Database
from tests.runtime.conftest import Tenants
from tests.runtime.test_programs import program_binding, runtime_kubeconfig

__all__ = ["runtime_kubeconfig"]  # a fixture this module uses

OPENAPI = REPO_ROOT / "docs" / "openapi.json"


def test_committed_openapi_has_not_drifted() -> None:
    assert OPENAPI.read_text() == render(), (
        "docs/openapi.json is out of date: run .venv/bin/python -m coachops_runtime.openapi"
    )


def test_every_operation_documents_problem_responses() -> None:
    import json

    document = json.loads(OPENAPI.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary") or operation.get("description"), (method, path)
            if path.startswith("/v1/") and not path.startswith("/v1/auth/"):
                # A signed link (its ``token`` parameter is the credential) may refuse with 403.
                signed_link = any(p["name"] == "token" for p in operation.get("parameters", []))
                responses = operation["responses"]
                assert "401" in responses or (signed_link and "403" in responses), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path not in ("/readyz",):
                    assert "application/problem+json" in response["content"], (method, path)


FUZZ_CREATOR = "fuzz"


@pytest.fixture
async def runtime_process(
    database: Database,
    stack: Stack,
    keys_dir: Path,
    tmp_path: Path,
    cluster: Cluster,
    runtime_kubeconfig: Path,
) -> AsyncIterator[str]:
    """The runtime as a real process (uvicorn), the way it runs in production."""
    port = free_port()
    env = {
        "COACHOPS_ENVIRONMENT": "development",
        "COACHOPS_DATABASE_URL": database.runtime_dsn,
        "COACHOPS_REDIS_URL": stack.redis.url,
        "COACHOPS_JWT_KEYS_DIR": str(keys_dir),
        "COACHOPS_TENANT_CACHE_SECONDS": "0",
        # The end user's limit (5/s by default) would answer the fuzzer 429 for most requests.
        "COACHOPS_END_USER_REQUESTS_PER_SECOND": "10000",
        "COACHOPS_LOG_LEVEL": "WARNING",
        "KUBECONFIG": str(runtime_kubeconfig),
    }
    namespace = creator_namespace(FUZZ_CREATOR)
    cluster.kubectl("create", "namespace", namespace, check=False)
    cluster.kubectl("apply", "-f", "-", input=program_binding(namespace))
    process = ManagedProcess(
        "runtime",
        [sys.executable, "-m", "coachops_runtime", "--host", "127.0.0.1", "--port", str(port)],
        tmp_path / "runtime.log",
        env=env,
    )
    process.start()
    base = f"http://127.0.0.1:{port}"

    async def live() -> bool:
        async with httpx.AsyncClient(timeout=1) as http:
            return (await http.get(f"{base}/livez")).status_code == 200

    try:
        await process.wait_ready(live, timeout=30)
        yield base
    finally:
        process.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def schemathesis(base: str, token: str, report: Path, *extra: str) -> None:
    """``st run`` with the hooks of tests/runtime/hostile_input.py: besides what fits the
    document, requests carry NUL, unpaired surrogates and hostile cursors."""
    report.mkdir(parents=True, exist_ok=True)
    for _attempt in range(2):
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "--config-file",
                str(Path(__file__).parent / "schemathesis.toml"),
                "run",
                f"{base}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance,"
                "status_code_conformance,problem_carries_the_request_id",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                os.environ.get("COACHOPS_FUZZ_EXAMPLES", "25"),
                "--seed",
                "4",
                "--generation-database",
                "none",
                "--generation-allow-x00",
                "true",
                "--workers",
                "2",
                "--no-color",
                "--report-dir",
                str(report),
                *extra,
            ],
            env={
                # The fuzzer is a tool, not code under test: no coverage start-up hook.
                **{k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")},
                "SCHEMATHESIS_HOOKS": "tests.runtime.hostile_input",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
                ),
            },
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=report,  # st keeps a cache directory in its working directory: one per run
        )
        # The tool crashing before it printed anything (a traceback of its own, nothing
        # tested) is not a finding about the runtime: run it once more. (Runs throttled
        # with --rate-limit, whose pyrate-limiter thread imports concurrently with the CLI,
        # crashed that way inside schemathesis' own imports.)
        if not (result.returncode and not result.stdout.strip() and "Traceback" in result.stderr):
            break
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


async def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    runtime_process: str, database: Database, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=runtime_process, timeout=30) as http:
        tenants = Tenants(database, http)
        creator = await tenants.signed_up(FUZZ_CREATOR, plan={"requestsPerSecond": 10_000})
        program = await tenants.add_program(creator, "fuzzing")
        user = await http.post(
            "/v1/end-users",
            json={"display_name": "fuzzy", "program_ids": [str(program)]},
            headers=creator.headers,
        )
        assert user.status_code == 201
        issued = await http.post(
            "/v1/end-user-tokens",
            json={"end_user_id": user.json()["end_user_id"], "program_id": str(program)},
            headers=creator.headers,
        )
        end_user_token = issued.json()["access_token"]
    # Creator routes with a creator token, end-user routes with an end-user token: two st
    # runs at once (the end-user run mostly waits on reply streams, the creator run on the
    # runtime), each with its own report; both finish before either failure is raised.
    halves = await asyncio.gather(
        asyncio.to_thread(
            schemathesis,
            runtime_process,
            creator.token,
            tmp_path / "creator",
            "--exclude-path-regex",
            "^/v1/me",
        ),
        asyncio.to_thread(
            schemathesis,
            runtime_process,
            end_user_token,
            tmp_path / "end-user",
            "--include-path-regex",
            "^/v1/me",
        ),
        return_exceptions=True,
    )
    failures = [half for half in halves if isinstance(half, BaseException)]
    assert not failures, "\n\n".join(f"{type(f).__name__}: {f}" for f in failures)
