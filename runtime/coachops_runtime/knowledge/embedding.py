"""Embeddings from Ollama's ``/api/embed``, a batch of texts per call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp


class EmbeddingError(Exception):
    """Ollama did not embed; ``missing_model`` when it does not have the model."""

    def __init__(self, reason: str, *, missing_model: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing_model = missing_model


def ollama_name(model: str, registry: str) -> str:
    """The name Ollama holds a spec's model under, as the operator pulls it:
    ``registry/model`` when a registry is set and the name has no host of its own."""
    first, slash, _ = model.partition("/")
    has_host = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if not registry or has_host:
        return model
    return f"{registry.rstrip('/')}/{model}"


class Embedder:
    def __init__(
        self, url: str, *, timeout: float = 120.0, batch: int = 32, registry: str = ""
    ) -> None:
        self.url = url.rstrip("/") + "/api/embed"
        self.registry = registry
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.batch = batch
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Opened on first use, inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, ``batch`` texts per request."""
        vectors: list[list[float]] = []
        for first in range(0, len(texts), self.batch):
            vectors.extend(await self.embed_batch(model, texts[first : first + self.batch]))
        return vectors

    async def embed_batch(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        body = {"model": ollama_name(model, self.registry), "input": list(texts), "truncate": True}
        try:
            async with self._client().post(self.url, json=body) as response:
                answer: Any = await response.json(content_type=None)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise EmbeddingError(f"Ollama unreachable: {error or type(error).__name__}") from error
        if status != 200:
            reason = answer.get("error", "") if isinstance(answer, dict) else ""
            raise EmbeddingError(
                f"Ollama answered {status}: {reason}"[:500],
                missing_model=status == 404 or "not found" in str(reason),
            )
        embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise EmbeddingError("Ollama's answer holds no embedding per input")
        return embeddings
