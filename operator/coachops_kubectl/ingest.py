"""``ingest``: upload knowledge files through the runtime's API, then follow ingestion.

``POST /v1/programs/{name}/knowledge`` (multipart ``file``) as a creator: an API key with
``programs:write`` (and ``programs:read`` to follow), or an access token. The body is
streamed in chunks so the bar moves with the bytes handed to the connection; then each
document is read back until the worker reports it ``ready`` or ``failed`` (its
``progress`` is the share of chunks stored).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from coachops_kubectl.errors import PluginError

CHUNK = 64 * 1024
POLL_SECONDS = 0.5
FINAL = frozenset({"ready", "failed"})

Advance = Callable[[int], None]


@dataclass(frozen=True)
class Body:
    """One multipart/form-data body with a single ``file`` part."""

    content_type: str
    head: bytes
    content: bytes
    tail: bytes

    @classmethod
    def of(cls, name: str, media_type: str, content: bytes) -> Body:
        boundary = secrets.token_hex(16)
        quoted = json.dumps(name)  # a quoted-string; the runtime rejects NUL itself
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename={quoted}\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        ).encode()
        return cls(
            f"multipart/form-data; boundary={boundary}",
            head,
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        )

    @property
    def length(self) -> int:
        return len(self.head) + len(self.content) + len(self.tail)

    async def chunks(self, advance: Advance) -> AsyncIterator[bytes]:
        yield self.head
        for start in range(0, len(self.content), CHUNK):
            part = self.content[start : start + CHUNK]
            yield part
            advance(len(part))
        yield self.tail


def media_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"  # the runtime then goes by the extension


class Runtime:
    """The runtime's knowledge routes for one program, as one creator."""

    def __init__(self, url: str, token: str, program: str) -> None:
        if not url:
            raise PluginError("no runtime URL: pass --runtime-url or set COACHOPS_RUNTIME_URL")
        if not token:
            raise PluginError(
                "no token: pass --token or set COACHOPS_TOKEN (an API key with programs:write)"
            )
        self.url = url.rstrip("/")
        self.base = f"{self.url}/v1/programs/{program}/knowledge"
        self.http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
        )

    async def close(self) -> None:
        await self.http.close()

    async def upload(self, path: Path, content: bytes, advance: Advance) -> dict[str, Any]:
        body = Body.of(path.name, media_type(path), content)
        headers = {"Content-Type": body.content_type, "Content-Length": str(body.length)}
        return await self._call("POST", self.base, data=body.chunks(advance), headers=headers)

    async def document(self, document_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{self.base}/{document_id}")

    async def _call(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        try:
            async with self.http.request(method, url, **options) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            reason = str(error) or type(error).__name__
            raise PluginError(f"cannot reach the runtime at {self.url}: {reason}") from None
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            body = {}
        if status >= 400:
            raise PluginError(f"the runtime answered {status}: {problem(body)}")
        return body if isinstance(body, dict) else {}


def problem(body: Any) -> str:
    """The readable part of an RFC 9457 problem document."""
    if not isinstance(body, dict):
        return "no problem document"
    title, detail = body.get("title") or "", body.get("detail") or ""
    return f"{title}: {detail}" if title and detail and title != detail else str(detail or title)


async def follow(
    runtime: Runtime, document_id: str, report: Callable[[dict[str, Any]], None], deadline: float
) -> dict[str, Any]:
    """Read the document until it is ``ready`` or ``failed`` (or ``deadline``, a
    ``time.monotonic`` instant, passes); each read goes to ``report``."""
    while True:
        document = await runtime.document(document_id)
        report(document)
        if document.get("state") in FINAL:
            return document
        if time.monotonic() >= deadline:
            return document
        await asyncio.sleep(POLL_SECONDS)
