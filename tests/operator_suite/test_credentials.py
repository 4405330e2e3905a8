"""Logging in from a kubeconfig: exec plugins (run for real: a small script written here),
relative paths, and the kubeconfigs the operator refuses at start-up with a reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from aiohttp import web

from coachops_operator import kube
from coachops_operator.credentials import from_kubeconfig
from coachops_operator.exec_plugin import EXPIRY_MARGIN
from tests.operator_suite.conftest import Peer

PLUGIN = f"""#!{sys.executable}
# An exec credential plugin: counts its runs, records what it was given, prints a token.
import json, os, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

state = Path(sys.argv[1])
runs = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(runs))
Path(str(state) + ".info").write_text(json.dumps({{
    "exec_info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]),
    "greeting": os.environ.get("GREETING"),
    "args": sys.argv[2:],
}}))
if os.environ.get("FAIL"):
    print("not logged in: run `cloud auth login`", file=sys.stderr)
    sys.exit(1)
status = {{"token": f"token-{{runs}}"}}
lifetime = os.environ.get("LIFETIME")
if lifetime:
    expires = datetime.now(UTC) + timedelta(seconds=float(lifetime))
    status["expirationTimestamp"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
if os.environ.get("CERTIFICATE"):
    status = {{"clientCertificateData": "x", "clientKeyData": "y"}}
print(json.dumps({{
    "apiVersion": os.environ.get("ANSWER_VERSION", "client.authentication.k8s.io/v1"),
    "kind": "ExecCredential",
    "status": status,
}}))
"""


def write_kubeconfig(directory: Path, server: str, user: dict[str, Any], **cluster: Any) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "ns"}}],
        "current-context": "ctx",
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def plugin(tmp_path: Path) -> Callable[..., Path]:
    """A kubeconfig whose user runs the plugin script (by a path relative to the file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "cloud-auth"
    script.write_text(PLUGIN)
    script.chmod(0o755)

    def make(server: str = "https://apiserver.invalid", ca: str = "", **env: str) -> Path:
        exec_entry = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "./bin/cloud-auth",
            "args": [str(tmp_path / "runs"), "--region", "eu"],
            "env": [{"name": "GREETING", "value": "hello"}]
            + [{"name": k, "value": v} for k, v in env.items()],
            "interactiveMode": "Never",
            "provideClusterInfo": True,
        }
        cluster = {"certificate-authority-data": ca} if ca else {}
        return write_kubeconfig(tmp_path, server, {"exec": exec_entry}, **cluster)

    return make


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


async def test_exec_plugin_token_is_kept_until_it_expires(
    plugin: Callable[..., Path], tmp_path: Path
) -> None:
    login = from_kubeconfig([plugin(ca="Q0E=", LIFETIME="3600")])
    assert await login.headers() == {"Authorization": "Bearer token-1"}
    assert await login.headers() == {"Authorization": "Bearer token-1"}
    assert runs(tmp_path) == 1
    expiration = login.expiration
    assert expiration is not None
    left = expiration - datetime.now(UTC)
    assert timedelta(minutes=59) - EXPIRY_MARGIN < left <= timedelta(hours=1) - EXPIRY_MARGIN
    # What the plugin was given: its args, its env, and the cluster it logs in to.
    given = json.loads((tmp_path / "runs.info").read_text())
    assert given["args"] == ["--region", "eu"]
    assert given["greeting"] == "hello"
    assert given["exec_info"]["kind"] == "ExecCredential"
    assert given["exec_info"]["spec"]["interactive"] is False
    assert given["exec_info"]["spec"]["cluster"] == {
        "server": "https://apiserver.invalid",
        "certificate-authority-data": "Q0E=",
    }
    assert login.info.default_namespace == "ns"


async def test_an_expired_or_refused_token_runs_the_plugin_again(
    plugin: Callable[..., Path], tmp_path: Path
) -> None:
    # Expires within the margin: never used twice.
    login = from_kubeconfig([plugin(LIFETIME=str(EXPIRY_MARGIN.total_seconds() / 2))])
    assert await login.headers() == {"Authorization": "Bearer token-1"}
    assert await login.headers() == {"Authorization": "Bearer token-2"}
    # Without an expiry the token is kept until the apiserver refuses it.
    login = from_kubeconfig([plugin()])
    assert await login.headers() == {"Authorization": "Bearer token-3"}
    assert await login.headers() == {"Authorization": "Bearer token-3"}
    assert await login.headers(refresh=True) == {"Authorization": "Bearer token-4"}
    assert login.expiration is None


async def test_a_401_renews_the_exec_token_and_retries_once(
    plugin: Callable[..., Path],
    tmp_path: Path,
    peer: Peer,
) -> None:
    def refuse(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "message": "Unauthorized"}, status=401)

    def accept(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Namespace"})

    peer.answers = [refuse, accept]
    api = kube.KubeClient(from_kubeconfig([plugin(server=peer.url)]))
    try:
        assert (await api.request("GET", "/api/v1/namespaces/x"))["kind"] == "Namespace"
    finally:
        await api.close()
    assert [auth for _, _, auth in peer.seen] == ["Bearer token-1", "Bearer token-2"]


async def test_kopf_gets_the_plugin_token_and_its_expiry(
    plugin: Callable[..., Path], tmp_path: Path
) -> None:
    login = await kube.kopf_login(from_kubeconfig([plugin(LIFETIME="600")]))
    try:
        assert login.server == "https://apiserver.invalid"
        assert login.aiohttp_session.headers["Authorization"] == "Bearer token-1"
        assert login.expiration is not None
        assert login.expiration < datetime.now(UTC) + timedelta(seconds=600)
    finally:
        await login.aiohttp_session.close()


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"FAIL": "1"}, "exit code 1: not logged in: run `cloud auth login`"),
        ({"CERTIFICATE": "1"}, "returned a client certificate"),
        ({"ANSWER_VERSION": "client.authentication.k8s.io/v1beta1"}, "answered with"),
    ],
)
async def test_a_plugin_that_cannot_serve_is_a_login_error(
    plugin: Callable[..., Path], env: dict[str, str], says: str
) -> None:
    login = from_kubeconfig([plugin(**env)])
    with pytest.raises(kopf.LoginError, match=r"exec plugin '\./bin/cloud-auth'") as raised:
        await login.headers()
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("user", "says"),
    [
        (
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "x",
                    "interactiveMode": "Always",
                }
            },
            "needs a terminal",
        ),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            "supports client.authentication.k8s.io/v1",
        ),
        ({"exec": {"command": "x"}}, "exec entry is invalid: apiVersion"),
        ({"auth-provider": {"name": "gcp", "config": {}}}, "auth-provider 'gcp'"),
    ],
)
def test_unsupported_users_are_refused_with_a_reason(
    tmp_path: Path, user: dict[str, Any], says: str
) -> None:
    path = write_kubeconfig(tmp_path, "https://x", user)
    with pytest.raises(kopf.LoginError, match=says):
        from_kubeconfig([path])


async def test_a_plugin_that_is_not_installed_says_so(tmp_path: Path) -> None:
    exec_entry = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "/nonexistent/cloud-auth",
        "installHint": "install cloud-auth from your cloud's CLI",
    }
    login = from_kubeconfig([write_kubeconfig(tmp_path, "https://x", {"exec": exec_entry})])
    with pytest.raises(kopf.LoginError) as raised:
        await login.headers()
    assert str(raised.value) == (
        "cannot run exec plugin '/nonexistent/cloud-auth': No such file or directory "
        "(install cloud-auth from your cloud's CLI)"
    )


def test_relative_paths_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path,
        "https://x",
        {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"},
        **{"certificate-authority": "pki/ca.crt"},
    )
    info = from_kubeconfig([path]).info
    assert info.ca_path == str(tmp_path / "pki/ca.crt")
    assert info.certificate_path == str(tmp_path / "pki/admin.crt")
    assert info.private_key_path == str(tmp_path / "pki/admin.key")


def test_the_first_kubeconfig_wins(tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write_kubeconfig(first, "https://first", {"token": "one"})
    write_kubeconfig(second, "https://second", {"token": "two"})
    login = from_kubeconfig([first / "kubeconfig", second / "kubeconfig"])
    assert (login.info.server, login.info.token) == ("https://first", "one")


def test_the_operator_refuses_to_start_with_a_failing_plugin(
    plugin: Callable[..., Path], tmp_path: Path
) -> None:
    """At start-up, one line says why, and the exit code is 2 (not a retry loop)."""
    env = {
        **os.environ,
        "KUBECONFIG": str(plugin(FAIL="1")),
        "COACHOPS_OPERATOR_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
        "COACHOPS_OPERATOR_REDIS_URL": "redis://127.0.0.1:1",
        "COACHOPS_OPERATOR_CHROMA_URL": "http://127.0.0.1:1",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    done = subprocess.run(
        [sys.executable, "-m", "coachops_operator", "--liveness-port", "0", "--metrics-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot log in to the Kubernetes API: exec plugin './bin/cloud-auth' failed" in (
        done.stdout + done.stderr
    )
