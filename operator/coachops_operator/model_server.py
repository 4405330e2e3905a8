"""Ollama's model API, as far as the operator needs it: show, pull (streamed), list, delete.

Plain JSON over aiohttp, like the other store clients. A model name is resolved once
here (``resolve``): a name without a registry host (``coachops/tiny-chat:latest``) is
pulled from the platform's model registry when one is set, so the spec can name models
the same way on every cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp

from coachops_operator import fence

SERVER_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError)


class ModelServerError(Exception):
    """Ollama answered with an error (its own words, which name no secret)."""


# Everything a call to Ollama may raise: its own error, or no answer.
MODEL_ERRORS: tuple[type[BaseException], ...] = (ModelServerError, *SERVER_ERRORS)


def has_host(name: str) -> bool:
    """Whether a model name starts with a registry host (``host:port/...``, ``a.b/...``)."""
    first, slash, _ = name.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def resolve(name: str, registry: str) -> str:
    """The name Ollama knows the model by: ``registry/name`` unless it names a host."""
    if not registry or has_host(name):
        return name
    return f"{registry.rstrip('/')}/{name}"


def _error_text(payload: bytes, status: int) -> str:
    try:
        found = json.loads(payload)
    except ValueError:
        found = None
    if isinstance(found, dict) and isinstance(found.get("error"), str):
        return str(found["error"])[:500]
    return f"HTTP {status}"


class ModelServer:
    """One Ollama server (``base_url``)."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def present(self, name: str) -> bool:
        """``/api/show``: True when Ollama holds the model, False on its 404."""
        fence.check()
        async with self._client().post(
            f"{self.base}/api/show", json={"model": name}, timeout=self.timeout
        ) as response:
            payload = await response.read()
            if response.status == 200:
                return True
            if response.status == 404:
                return False
            raise ModelServerError(_error_text(payload, response.status))

    async def names(self) -> list[str]:
        """``/api/tags``: every model Ollama holds."""
        fence.check()
        async with self._client().get(f"{self.base}/api/tags", timeout=self.timeout) as response:
            payload = await response.read()
            if response.status != 200:
                raise ModelServerError(_error_text(payload, response.status))
        models = json.loads(payload).get("models") or []
        return [str(model.get("model") or model.get("name")) for model in models]

    async def delete(self, name: str) -> bool:
        """``/api/delete``; False when Ollama did not have it."""
        fence.check()
        async with self._client().delete(
            f"{self.base}/api/delete", json={"model": name}, timeout=self.timeout
        ) as response:
            payload = await response.read()
            if response.status == 404:
                return False
            if response.status != 200:
                raise ModelServerError(_error_text(payload, response.status))
        return True

    async def pull(self, name: str, *, insecure: bool) -> AsyncGenerator[dict[str, Any]]:
        """``/api/pull``, streamed: Ollama's progress lines until ``success``.

        An error line (``{"error": ...}``, which arrives after a 200) or an error status
        raises ``ModelServerError`` with Ollama's words. Ollama resumes the partial blobs
        of an earlier pull of the same model, so calling this again continues a download.
        """
        fence.check()
        # No total timeout: a large pull takes as long as it takes; a stalled one ends
        # when no line arrives for a while (Ollama reports progress several times a second).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        async with self._client().post(
            f"{self.base}/api/pull",
            json={"model": name, "insecure": insecure, "stream": True},
            timeout=timeout,
        ) as response:
            if response.status != 200:
                raise ModelServerError(_error_text(await response.read(), response.status))
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if not isinstance(event, dict):
                    continue
                if "error" in event:
                    raise ModelServerError(str(event["error"])[:500])
                yield event
