"""A small Kubernetes API client on aiohttp: server-side apply, get, list, delete.

Server-side apply with one field manager makes every write idempotent: applying the same
manifest twice changes nothing, and applying it over an edited or deleted object repairs
it. That is what lets a reconcile run again after a crash without creating duplicates.

The operator speaks plain JSON to the API and needs none of a generated client's models:
not importing one keeps ~50 MB out of the process and a model round trip out of every
call. kopf's own session is made here too (``kopf_login``), from the same credentials
(``credentials.py``), so both agree. Every request of either first passes the leader's
fence (``fence.py``). An answer of 429 (the apiserver's priority and fairness shedding
load) is retried after its Retry-After, a few times; a 401 renews credentials that can be
renewed (exec plugin, token file) and is tried once more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import kopf

from coachops_operator import fence
from coachops_operator.credentials import Credentials, load
from coachops_operator.kinds import BY_KIND

FIELD_MANAGER = "coachops-operator"
THROTTLE_RETRIES = 5  # 429 answers retried per request
RETRY_AFTER_DEFAULT = 1.0  # seconds, when a 429 names none
RETRY_AFTER_MAX = 10.0  # never wait longer than this for one retry
STATUS_MESSAGE_MAX = 500


class KubeError(Exception):
    """The API answered with an error status; ``message`` is its Status object's message."""

    def __init__(self, status: int, reason: str, message: str = "") -> None:
        text = f"HTTP {status} {reason}"
        super().__init__(f"{text}: {message}" if message else text)
        self.status = status
        self.reason = reason
        self.message = message

    @classmethod
    def from_answer(cls, status: int, reason: str, payload: bytes) -> KubeError:
        """The error of an answer whose body may be a ``Status`` (the apiserver's errors)."""
        message = ""
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = None
        if isinstance(body, Mapping) and body.get("kind") == "Status":
            message = str(body.get("message") or "")[:STATUS_MESSAGE_MAX]
        return cls(status, reason, message)


# What a call to the API can raise: an error status, or no answer at all.
KUBE_ERRORS: tuple[type[BaseException], ...] = (
    KubeError,
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
)


def retry_after(value: str | None) -> float:
    """Seconds to wait before retrying a 429: its Retry-After (whole seconds, as the
    apiserver sends it), bounded; a default when it names none or nothing readable."""
    try:
        seconds = float(value) if value is not None else RETRY_AFTER_DEFAULT
    except ValueError:
        seconds = RETRY_AFTER_DEFAULT
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)


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


async def _fenced(_session: aiohttp.ClientSession, _context: SimpleNamespace, _params: Any) -> None:
    fence.check()


def _session(credentials: Credentials, *, limit: int, **options: Any) -> aiohttp.ClientSession:
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_fenced)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=_ssl_context(credentials.info), limit=limit),
        # No proxy environment and no ~/.netrc: reading them runs in a worker thread on
        # every request (~10 % of the operator's CPU under load).
        trust_env=False,
        proxy=credentials.info.proxy_url,
        trace_configs=[trace],
        **options,
    )


async def kopf_login(credentials: Credentials) -> kopf.AiohttpSession:
    """kopf's session: the same credentials and fence as ``KubeClient``. kopf logs in
    again when ``expiration`` passes or the apiserver answers 401."""
    headers = await credentials.headers(refresh=True)
    info = credentials.info
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=credentials.expiration,
        aiohttp_session=_session(credentials, limit=0, headers=headers),
    )


class KubeClient:
    """One HTTP session to the apiserver; JSON in, JSON out, errors as ``KubeError``."""

    def __init__(self, credentials: Credentials, *, timeout: float = 30.0) -> None:
        self.server = credentials.info.server.rstrip("/")
        self.credentials = credentials
        self._session = _session(
            credentials,
            limit=64,
            timeout=aiohttp.ClientTimeout(total=timeout),
            read_bufsize=2**21,
        )

    @classmethod
    def from_environment(cls) -> KubeClient:
        return cls(load())

    async def close(self) -> None:
        await self._session.close()

    async def _send(
        self,
        method: str,
        path: str,
        data: str | None,
        query: dict[str, str] | None,
        content_type: str,
        refresh: bool,
    ) -> tuple[int, str, str | None, bytes]:
        headers = {"Accept": "application/json", **await self.credentials.headers(refresh=refresh)}
        if data is not None:
            headers["Content-Type"] = content_type
        async with self._session.request(
            method, self.server + path, params=query, data=data, headers=headers
        ) as response:
            payload = await response.read()
            return (
                response.status,
                response.reason or "",
                response.headers.get("Retry-After"),
                payload,
            )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        throttled = 0
        refreshed = False
        while True:
            status, reason, wait, payload = await self._send(
                method, path, data, query, content_type, refresh=False
            )
            if status == 401 and self.credentials.renewable and not refreshed:
                refreshed = True  # expired or rotated credentials: renew them, once
                status, reason, wait, payload = await self._send(
                    method, path, data, query, content_type, refresh=True
                )
            if status == 429 and throttled < THROTTLE_RETRIES:
                throttled += 1
                await asyncio.sleep(retry_after(wait))
                continue
            if status >= 400:
                raise KubeError.from_answer(status, reason, payload)
            result = json.loads(payload) if payload else {}
            return result if isinstance(result, dict) else {}

    async def watch(self, path: str, query: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch (``?watch=true``), until the server ends it."""
        params = {**query, "watch": "true", "allowWatchBookmarks": "true"}
        headers = {"Accept": "application/json", **await self.credentials.headers()}
        server_timeout = float(params.setdefault("timeoutSeconds", "300"))
        timeout = aiohttp.ClientTimeout(total=None, sock_read=server_timeout + 30)
        async with self._session.get(
            self.server + path, params=params, headers=headers, timeout=timeout
        ) as response:
            if response.status >= 400:
                raise KubeError.from_answer(
                    response.status, response.reason or "", await response.read()
                )
            async for line in response.content:
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event


def _base(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def _path(api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
    known = BY_KIND[kind]
    base = _base(api_version)
    if known.namespaced:
        if not namespace:
            raise ValueError(f"{kind} {name} needs a namespace")
        base += f"/namespaces/{namespace}"
    base += f"/{known.plural}"
    return f"{base}/{name}" if name else base


def all_namespaces_path(api_version: str, kind: str) -> str:
    """The collection of ``kind`` across every namespace (for list and watch)."""
    return f"{_base(api_version)}/{BY_KIND[kind].plural}"


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


async def patch_status(
    api: KubeClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str,
    status: dict[str, Any],
) -> dict[str, Any]:
    """JSON merge patch of the status subresource (what kopf's own patches are too)."""
    return await api.request(
        "PATCH",
        _path(api_version, kind, namespace, name) + "/status",
        body={"status": status},
        content_type="application/merge-patch+json",
    )
