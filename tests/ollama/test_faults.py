"""What clients see when Ollama is down or a model is unknown, with the real server.

Classification that callers can rely on (ollama client 0.6):

* server unreachable: a non-streaming call raises the builtin ``ConnectionError``; a
  streaming call raises ``httpx.ConnectError`` when iterated (the client does not wrap it);
  both are caught by ``(ConnectionError, httpx.TransportError)``;
* server dies mid-stream: an ``httpx.TransportError`` (``RemoteProtocolError``/``ReadError``);
* unknown model: ``ollama.ResponseError`` with ``status_code == 404`` and the server's
  documented body ``{"error": "model '<name>' not found"}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest
from ollama import AsyncClient, ChatResponse, ResponseError

from coachops_devstack.ollama import OllamaStack
from tests.ollama.conftest import OllamaFault, aclose

UNAVAILABLE = (ConnectionError, httpx.TransportError)
HI = [{"role": "user", "content": "hi"}]


async def _drain(stream: Awaitable[AsyncIterator[Any]]) -> None:
    async for _ in await stream:
        pass


async def test_stopped_server_gives_a_classifiable_connection_error(
    ollama: str, ollama_stack: OllamaStack, ollama_fault: OllamaFault
) -> None:
    ollama_client = AsyncClient(host=ollama, timeout=10)
    try:
        await ollama_client.embed(model=ollama_stack.embedding_model, input="before")

        ollama_fault.stop()
        with pytest.raises(ConnectionError):
            await ollama_client.embed(model=ollama_stack.embedding_model, input="while down")
        with pytest.raises(ConnectionError):
            await ollama_client.list()
        with pytest.raises(httpx.ConnectError):
            await _drain(
                ollama_client.chat(model=ollama_stack.chat_model, messages=HI, stream=True)
            )
        with pytest.raises(UNAVAILABLE):
            await ollama_client.pull(ollama_stack.chat_model, insecure=True)

        seconds = await ollama_fault.start()
        assert seconds < 60
        # Back on the same address with the same models: the embedding model survived.
        response = await ollama_client.embed(model=ollama_stack.embedding_model, input="after")
        assert len(response.embeddings[0]) == ollama_stack.embedding_dimension
    finally:
        await aclose(ollama_client)


async def test_server_killed_mid_stream_gives_a_transport_error(
    ollama: str, pulled_chat_model: str, ollama_fault: OllamaFault
) -> None:
    ollama_client = AsyncClient(host=ollama, timeout=30)
    received: list[ChatResponse] = []

    async def read_then_kill() -> None:
        stream = await ollama_client.chat(
            model=pulled_chat_model,
            messages=[{"role": "user", "content": "Write a long plan"}],
            stream=True,
            options={"num_predict": 2000},
        )
        async for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                ollama_fault.kill()

    try:
        with pytest.raises(httpx.TransportError):
            await read_then_kill()
        assert len(received) >= 3
        assert not received[-1].done
    finally:
        await aclose(ollama_client)


async def test_unknown_model_gives_the_documented_error_shape(
    ollama: str, ollama_client: AsyncClient
) -> None:
    with pytest.raises(ResponseError) as chat:
        await ollama_client.chat(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert chat.value.status_code == 404
    assert chat.value.error == "model 'no-such-model' not found"

    with pytest.raises(ResponseError) as embedded:
        await ollama_client.embed(model="no-such-model:v1", input="hi")
    assert embedded.value.status_code == 404
    assert "not found" in embedded.value.error

    # The raw body is exactly {"error": "..."} with a JSON content type.
    async with httpx.AsyncClient(base_url=ollama, timeout=10) as raw:
        response = await raw.post("/api/show", json={"model": "no-such-model"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": "model 'no-such-model' not found"}


async def test_a_pull_the_registry_cannot_serve_fails_and_ollama_stays_up(
    ollama_client: AsyncClient, ollama_fault: OllamaFault
) -> None:
    with pytest.raises(ResponseError) as failure:
        await ollama_client.pull(ollama_fault.missing_model, insecure=True)
    assert failure.value.status_code >= 400
    assert (await ollama_client.list()).models is not None
