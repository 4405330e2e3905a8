"""How the operator logs in to the apiserver: in a cluster, or from a kubeconfig.

In a cluster (``KUBERNETES_SERVICE_HOST`` set, no ``KUBECONFIG``) it uses the projected
ServiceAccount token, re-read every minute because the kubelet rotates it. Otherwise it
reads the kubeconfig (``KUBECONFIG``, several files merged first-wins, or
``~/.kube/config``) itself, because the operator does not load the Kubernetes client
libraries that kopf would use for anything beyond the basics. Supported user entries:
``token`` / ``tokenFile``, client certificates, basic auth, an ``auth-provider`` that
already holds an ``access-token``, and **exec plugins** (``client.authentication.k8s.io``
``v1`` or ``v1beta1``, as EKS, GKE and AKS kubeconfigs use): the plugin runs as a
subprocess and its token is kept until its ``expirationTimestamp`` (less a small margin),
then the plugin runs again; a 401 also runs it again (``exec_plugin.py``). Anything else
fails at start-up with ``kopf.LoginError`` saying what is not supported. Relative paths in
a kubeconfig are relative to the file that holds them, as kubectl reads them.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import kopf
import yaml
from pydantic import ValidationError

from coachops_operator.exec_plugin import ExecConfig, ExecPlugin
from coachops_operator.validation import first_problem

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0  # projected ServiceAccount tokens rotate; re-read like client-go


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


class Credentials:
    """Where the apiserver is, how to trust it, and the Authorization header to send."""

    def __init__(
        self,
        info: kopf.ConnectionInfo,
        *,
        exec_plugin: ExecPlugin | None = None,
        token_file: Path | None = None,
    ) -> None:
        self.info = info  # server, TLS, basic auth, a static token
        self.exec_plugin = exec_plugin
        self._token_file = token_file  # re-read now and then (a projected token rotates)
        self._token = info.token
        self._token_read_at = time.monotonic()

    @property
    def expiration(self) -> datetime | None:
        return self.exec_plugin.expiration if self.exec_plugin is not None else None

    @property
    def renewable(self) -> bool:
        """Whether asking again can give other credentials (a 401 is then worth a retry)."""
        return self.exec_plugin is not None or self._token_file is not None

    async def headers(self, *, refresh: bool = False) -> dict[str, str]:
        """The Authorization header; ``refresh`` after a 401 gets new credentials where
        they can be renewed (an exec plugin runs again, a token file is re-read)."""
        info = self.info
        if self.exec_plugin is not None:
            return {"Authorization": f"Bearer {await self.exec_plugin.token(refresh=refresh)}"}
        if self._token_file is not None and (
            refresh or time.monotonic() - self._token_read_at > TOKEN_REREAD_SECONDS
        ):
            self._token = self._token_file.read_text().strip()
            self._token_read_at = time.monotonic()
        if self._token:
            return {"Authorization": f"{info.scheme or 'Bearer'} {self._token}"}
        if info.username and info.password:
            basic = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}


def load() -> Credentials:
    """The credentials of this process: in-cluster, else the kubeconfig."""
    if in_cluster():
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
        token_file = SERVICE_ACCOUNT_DIR / "token"
        info = kopf.ConnectionInfo(
            server=f"https://{host}:{port}",
            ca_path=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            token=token_file.read_text().strip(),
            default_namespace=namespace_file.read_text().strip()
            if namespace_file.exists()
            else None,
        )
        return Credentials(info, token_file=token_file)
    return from_kubeconfig(_kubeconfig_paths())


def _kubeconfig_paths() -> list[Path]:
    listed = os.environ.get("KUBECONFIG", "")
    paths = [Path(p.strip()).expanduser() for p in listed.split(os.pathsep) if p.strip()]
    if paths:
        return paths
    default = Path("~/.kube/config").expanduser()
    if default.exists():
        return [default]
    raise kopf.LoginError("no KUBECONFIG, no ~/.kube/config and not in a cluster")


def _entries(
    found: dict[str, tuple[dict[str, Any], Path]], items: Any, field: str, base: Path
) -> None:
    for item in items or []:
        if isinstance(item, Mapping) and item.get("name") not in found:
            found[str(item.get("name"))] = (dict(item.get(field) or {}), base)


def from_kubeconfig(paths: list[Path]) -> Credentials:
    """The current context of the merged kubeconfig files (the first value of each wins)."""
    current: str | None = None
    contexts: dict[str, tuple[dict[str, Any], Path]] = {}
    clusters: dict[str, tuple[dict[str, Any], Path]] = {}
    users: dict[str, tuple[dict[str, Any], Path]] = {}
    for path in paths:
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise kopf.LoginError(f"cannot read kubeconfig {path}: {error}") from None
        base = path.resolve().parent
        current = current or config.get("current-context")
        _entries(contexts, config.get("contexts"), "context", base)
        _entries(clusters, config.get("clusters"), "cluster", base)
        _entries(users, config.get("users"), "user", base)
    if not current or current not in contexts:
        raise kopf.LoginError(f"the kubeconfig's current context {current!r} is not defined")
    context = contexts[current][0]
    if context.get("cluster") not in clusters:
        raise kopf.LoginError(f"context {current!r} names no known cluster")
    cluster, cluster_dir = clusters[context["cluster"]]
    user, user_dir = users.get(str(context.get("user")), ({}, cluster_dir))
    if not cluster.get("server"):
        raise kopf.LoginError(f"cluster {context['cluster']!r} has no server")

    def local(value: Any, base: Path) -> str | None:
        return str(base / os.path.expanduser(str(value))) if value else None

    token = user.get("token")
    if user.get("tokenFile") and not token:
        token = Path(str(local(user["tokenFile"], user_dir))).read_text().strip()
    provider = user.get("auth-provider")
    if provider and not token:
        token = (provider.get("config") or {}).get("access-token")
        if not token:
            raise kopf.LoginError(
                f"the kubeconfig user uses auth-provider {provider.get('name')!r}, which the "
                "operator does not support (kubectl dropped it too); use the provider's exec "
                "plugin (gke-gcloud-auth-plugin, kubelogin) or a token"
            )
    info = kopf.ConnectionInfo(
        server=str(cluster["server"]),
        ca_path=local(cluster.get("certificate-authority"), cluster_dir),
        ca_data=cluster.get("certificate-authority-data"),
        insecure=cluster.get("insecure-skip-tls-verify"),
        certificate_path=local(user.get("client-certificate"), user_dir),
        certificate_data=user.get("client-certificate-data"),
        private_key_path=local(user.get("client-key"), user_dir),
        private_key_data=user.get("client-key-data"),
        username=user.get("username"),
        password=user.get("password"),
        token=token,
        default_namespace=context.get("namespace"),
        proxy_url=cluster.get("proxy-url"),
    )
    plugin = None
    if user.get("exec"):
        try:
            config = ExecConfig.model_validate(user["exec"])
        except ValidationError as error:
            raise kopf.LoginError(
                f"the kubeconfig user's exec entry is invalid: {first_problem(error)}"
            ) from None
        plugin = ExecPlugin(config, base_dir=user_dir, cluster=_cluster_info(cluster))
    return Credentials(info, exec_plugin=plugin)


def _cluster_info(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The cluster as an exec plugin sees it with ``provideClusterInfo`` (ExecCredential
    spec.cluster)."""
    info: dict[str, Any] = {"server": cluster["server"]}
    for key in ("certificate-authority-data", "insecure-skip-tls-verify", "tls-server-name"):
        if cluster.get(key) is not None:
            info[key] = cluster[key]
    extension = next(
        (
            item.get("extension")
            for item in cluster.get("extensions") or []
            if item.get("name") == "client.authentication.k8s.io/exec"
        ),
        None,
    )
    if extension is not None:
        info["config"] = extension
    return info
