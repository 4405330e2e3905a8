"""A real pull from the loopback registry, watched through the official client's stream."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from ollama import AsyncClient, ProgressResponse, ResponseError

from tests.ollama.conftest import ModelRegistry


async def _forget(ollama_client: AsyncClient, model: str) -> None:
    """Delete the model from Ollama (its blobs are pruned), so the next pull downloads."""
    with contextlib.suppress(ResponseError):  # 404 when Ollama does not have it
        await ollama_client.delete(model)


async def _drain(stream: Awaitable[AsyncIterator[Any]]) -> int:
    count = 0
    async for _ in await stream:
        count += 1
    return count


async def test_pull_streams_increasing_progress(
    ollama_client: AsyncClient, model_registry: ModelRegistry
) -> None:
    await _forget(ollama_client, model_registry.chat_model)
    assert model_registry.chat_model not in {m.model for m in (await ollama_client.list()).models}

    events: list[tuple[float, ProgressResponse]] = []
    started = time.monotonic()
    async for event in await ollama_client.pull(
        model_registry.chat_model, insecure=True, stream=True
    ):
        events.append((time.monotonic() - started, event))

    statuses = [event.status for _, event in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses
    assert "writing manifest" in statuses

    # The GGUF layer is the biggest blob; its progress must climb from the first chunk to
    # the total without going back, in several visible steps.
    layers: dict[str, list[tuple[int, int]]] = {}
    for _, event in events:
        if event.digest and event.total:
            layers.setdefault(event.digest, []).append((event.completed or 0, event.total))
    model_layer = max(layers.values(), key=lambda progress: progress[0][1])
    total = model_layer[0][1]
    completed = [c for c, t in model_layer]
    assert all(t == total for _, t in model_layer)
    assert completed == sorted(completed), "completed went backwards"
    assert completed[-1] == total
    assert len({c for c in completed if 0 < c < total}) >= 5, completed
    assert total > 1_000_000  # the tiny chat GGUF is about 2 MB

    # The pulled model is a real, usable model now.
    listed = {m.model: m for m in (await ollama_client.list()).models}
    assert model_registry.chat_model in listed
    assert listed[model_registry.chat_model].size is not None
    shown = await ollama_client.show(model_registry.chat_model)
    assert shown.details is not None
    assert shown.details.family == "llama"
    assert "<|im_start|>" in (shown.template or "")


async def test_pull_of_an_unknown_model_fails_with_the_documented_error_shape(
    ollama_client: AsyncClient, model_registry: ModelRegistry
) -> None:
    # Streaming: the HTTP status is already 200, so the error arrives as {"error": ...}
    # in the stream, which the client raises as ResponseError without a status code.
    with pytest.raises(ResponseError) as streamed:
        await _drain(ollama_client.pull(model_registry.missing_model, insecure=True, stream=True))
    assert streamed.value.status_code == -1
    assert "file does not exist" in streamed.value.error

    # Not streaming: an HTTP error status with the JSON body {"error": ...}.
    with pytest.raises(ResponseError) as whole:
        await ollama_client.pull(model_registry.missing_model, insecure=True)
    assert whole.value.status_code >= 400
    assert "file does not exist" in whole.value.error

    assert model_registry.missing_model not in {
        m.model for m in (await ollama_client.list()).models
    }
