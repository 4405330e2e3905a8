"""A small Kubernetes API client on aiohttp: server-side apply, get, list, delete, patch.

Server-side apply with one field manager makes every write idempotent: applying the same
manifest twice changes nothing, and applying it over an edited or deleted object repairs
it. That is what lets a reconcile run again after a crash without creating duplicates.

The operator speaks plain JSON to the API and needs none of a generated client's models:
not importing one keeps ~50 MB out of the process and a model round trip out of every
call. Credentials are the ones kopf logs in with (``login``), so both agree.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kopf

FIELD_MANAGER = "coachops-operator"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0  # projected ServiceAccount tokens rotate; re-read like client-go

# kind -> (plural, namespaced)
_RESOURCES: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ResourceQuota": ("resourcequotas", True),
    "LimitRange": ("limitranges", True),
    "Role": ("roles", True),
    "ClusterRole": ("clusterroles", False),
    "RoleBinding": ("rolebindings", True),
    "NetworkPolicy": ("networkpolicies", True),
    "Deployment": ("deployments", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Lease": ("leases", True),
    "Creator": ("creators", False),
    "CoachingProgram": ("coachingprograms", True),
}


class KubeError(Exception):
    """The API answered with an error status (or could not be asked)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


# What a call to the API can raise: an error status, or no answer at all.
KUBE_ERRORS: tuple[type[BaseException], ...] = (
    KubeError,
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
)


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def login(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo:
    """The connection kopf and this client share: in-cluster, else the kubeconfig."""
    settings = settings or kopf.OperatorSettings()
    if in_cluster():
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
        return kopf.ConnectionInfo(
            server=f"https://{host}:{port}",
            ca_path=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
            default_namespace=namespace_file.read_text().strip()
            if namespace_file.exists()
            else None,
        )
    info = kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError("no KUBECONFIG, no ~/.kube/config and not in a cluster")
    return info


def _pem(data: str | bytes) -> bytes:
    """Kubeconfig ``*-data`` fields are base64 of PEM."""
    raw = data.encode() if isinstance(data, str) else data
    return raw if raw.lstrip().startswith(b"-----") else base64.b64decode(raw)


def _read(path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> bytes | None:
    return Path(os.fsdecode(path)).read_bytes() if path else None


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=os.fsdecode(info.ca_path) if info.ca_path else None,
        cadata=_pem(info.ca_data).decode() if info.ca_data else None,
    )
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert = _pem(info.certificate_data) if info.certificate_data else _read(info.certificate_path)
    key = _pem(info.private_key_data) if info.private_key_data else _read(info.private_key_path)
    if cert and key:
        # ssl loads a client certificate only from files: write them where only we can
        # read them, for as long as loading takes.
        with tempfile.TemporaryDirectory(prefix="coachops-kube-") as directory:
            cert_file, key_file = Path(directory, "tls.crt"), Path(directory, "tls.key")
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            context.load_cert_chain(cert_file, key_file)
    return context


class KubeClient:
    """One HTTP session to the apiserver; JSON in, JSON out, errors as ``KubeError``."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        self.server = info.server.rstrip("/")
        self._info = info
        self._token = info.token
        self._token_read_at = time.monotonic()
        self._rotating_token = in_cluster()  # a projected token file, re-read now and then
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=_ssl_context(info), limit=64),
            timeout=aiohttp.ClientTimeout(total=timeout),
            # No proxy environment and no ~/.netrc: reading them runs in a worker thread on
            # every request (~10 % of the operator's CPU under load).
            trust_env=False,
            read_bufsize=2**21,
        )

    @classmethod
    def from_environment(cls) -> KubeClient:
        return cls(login())

    async def close(self) -> None:
        await self._session.close()

    def _authorization(self) -> dict[str, str]:
        info = self._info
        if self._rotating_token and time.monotonic() - self._token_read_at > TOKEN_REREAD_SECONDS:
            self._token = (SERVICE_ACCOUNT_DIR / "token").read_text().strip()
            self._token_read_at = time.monotonic()
        if self._token:
            return {"Authorization": f"{info.scheme or 'Bearer'} {self._token}"}
        if info.username and info.password:
            basic = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", **self._authorization()}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":"))
        async with self._session.request(
            method, self.server + path, params=query, data=data, headers=headers
        ) as response:
            payload = await response.read()
            if response.status >= 400:
                raise KubeError(response.status, response.reason or "")
        result = json.loads(payload) if payload else {}
        return result if isinstance(result, dict) else {}

    async def watch(self, path: str, query: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch (``?watch=true``), until the server ends it."""
        params = {**query, "watch": "true", "allowWatchBookmarks": "true"}
        headers = {"Accept": "application/json", **self._authorization()}
        server_timeout = float(params.setdefault("timeoutSeconds", "300"))
        timeout = aiohttp.ClientTimeout(total=None, sock_read=server_timeout + 30)
        async with self._session.get(
            self.server + path, params=params, headers=headers, timeout=timeout
        ) as response:
            if response.status >= 400:
                raise KubeError(response.status, response.reason or "")
            async for line in response.content:
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event


def plural(kind: str) -> str:
    return _RESOURCES[kind][0]


def _path(api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
    resource, namespaced = _RESOURCES[kind]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise ValueError(f"{kind} {name} needs a namespace")
        base += f"/namespaces/{namespace}"
    base += f"/{resource}"
    return f"{base}/{name}" if name else base


def all_namespaces_path(api_version: str, kind: str) -> str:
    """The collection of ``kind`` across every namespace (for list and watch)."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/{_RESOURCES[kind][0]}"


def _manifest_path(manifest: dict[str, Any], *, named: bool = True) -> str:
    meta = manifest["metadata"]
    name = meta["name"] if named else None
    return _path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), name)


async def apply(api: KubeClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply ``manifest``; the operator takes ownership of the fields it sets.

    ``fieldValidation=Ignore`` spares the apiserver a second, strict decoding of the patch:
    apply still refuses any field the type does not declare (tests/operator_suite/
    test_manifests.py)."""
    return await api.request(
        "PATCH",
        _manifest_path(manifest),
        body=manifest,
        query={"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Ignore"},
        content_type="application/apply-patch+yaml",
    )


async def create(api: KubeClient, manifest: dict[str, Any]) -> dict[str, Any]:
    return await api.request(
        "POST",
        _manifest_path(manifest, named=False),
        body=manifest,
        query={"fieldManager": FIELD_MANAGER},
    )


async def replace(api: KubeClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """PUT: fails with 409 unless ``metadata.resourceVersion`` is still current."""
    return await api.request(
        "PUT", _manifest_path(manifest), body=manifest, query={"fieldManager": FIELD_MANAGER}
    )


async def get(
    api: KubeClient, api_version: str, kind: str, namespace: str | None, name: str
) -> dict[str, Any] | None:
    """The live object, or None when it does not exist."""
    try:
        return await api.request("GET", _path(api_version, kind, namespace, name))
    except KubeError as error:
        if error.status == 404:
            return None
        raise


async def list_objects(
    api: KubeClient, api_version: str, kind: str, namespace: str | None
) -> list[dict[str, Any]]:
    result = await api.request("GET", _path(api_version, kind, namespace, None))
    items: list[dict[str, Any]] = result.get("items", [])
    return items


async def delete(
    api: KubeClient, api_version: str, kind: str, namespace: str | None, name: str
) -> bool:
    """Delete in the background; True if it existed."""
    try:
        await api.request(
            "DELETE",
            _path(api_version, kind, namespace, name),
            body={"propagationPolicy": "Background"},
        )
    except KubeError as error:
        if error.status == 404:
            return False
        raise
    return True


async def patch_merge(
    api: KubeClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str,
    body: dict[str, Any],
    *,
    subresource: str = "",
) -> dict[str, Any]:
    path = _path(api_version, kind, namespace, name) + (f"/{subresource}" if subresource else "")
    return await api.request("PATCH", path, body=body, content_type="application/merge-patch+json")


def api_error_summary(error: KubeError) -> str:
    """A short, secret-free description of an API error (status and reason only)."""
    return f"HTTP {error.status} {error.reason}"
