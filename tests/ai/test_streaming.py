"""SSE over a real HTTP server: the reply streams while it is generated, a reconnect with
Last-Event-ID resumes without gap or repeat, and a client that leaves does not stop the
generation. Also the creator's preview, and the OpenAI-compatible provider against
Ollama's own /v1 endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from coachops_devstack.ports import free_port
from coachops_runtime.ai.providers import ChatMessage, ChatRequest, OpenAIProvider, Usage
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from tests.ai import sse
from tests.ai.conftest import Coaching


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    """The test's app served by uvicorn on loopback (its lifespan is already running)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    async with asyncio.timeout(10):
        while not served.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    await task


async def _events(
    base: str, url: str, headers: dict[str, str], limit: int | None = None
) -> list[sse.Event]:
    """Events until ``done`` (or the first ``limit``, then the connection is dropped)."""
    got: list[sse.Event] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as http,
        http.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for event in sse.iterate(response.aiter_lines()):
            got.append(event)
            if event.event == "done" or (limit is not None and len(got) >= limit):
                break
    return got


async def test_reconnect_with_last_event_id_resumes_without_gaps_or_repeats(
    coaching: Coaching, replies: ReplyPoller, server: str
) -> None:
    creator = await coaching.creator("aisse")
    program = await coaching.program(creator, "sleep", coaching.spec(maxTokens=300))
    me = await coaching.end_user(creator, program)
    sent = await coaching.send(me, "Tell me about sleep.")
    url = sent["reply_stream"]

    first = asyncio.create_task(_events(server, url, me, limit=5))
    await asyncio.sleep(0.3)  # the client is listening before generation starts
    generating = asyncio.create_task(coaching.drain(replies))
    head = await first
    assert [e.event for e in head] == ["token"] * 5
    tail = await _events(server, url, {**me, "Last-Event-ID": head[-1].id})
    await generating
    assert tail[-1].event == "done"
    ids = [e.id for e in head + tail]
    assert len(ids) == len(set(ids))
    stored = [m for m in await coaching.messages(me) if m["author"] == "ai"]
    text = "".join(e.data for e in head + tail if e.event == "token")
    assert text.strip() == stored[0]["body"]
    assert json.loads(tail[-1].data)["message_id"] == stored[0]["message_id"]


async def test_a_client_that_leaves_does_not_stop_the_generation(
    coaching: Coaching, replies: ReplyPoller, server: str
) -> None:
    creator = await coaching.creator("aileave")
    program = await coaching.program(creator, "sleep", coaching.spec(maxTokens=300))
    me = await coaching.end_user(creator, program)
    sent = await coaching.send(me, "Tell me about sleep.")
    listening = asyncio.create_task(_events(server, sent["reply_stream"], me, limit=1))
    await asyncio.sleep(0.3)
    generating = asyncio.create_task(coaching.drain(replies))
    (only,) = await listening  # and the client hangs up
    assert only.event == "token"
    await generating
    (reply,) = await coaching.superuser(
        "SELECT body, completion_tokens FROM messages WHERE author = 'ai'"
    )
    # Generated to its end after the client left: many more pieces than the one it saw,
    # all of them stored and on the stream, which ends with done.
    assert reply["completion_tokens"] > 20
    everything = await _events(server, sent["reply_stream"], me)
    assert everything[-1].event == "done"
    assert everything[0] == only
    assert "".join(e.data for e in everything if e.event == "token").strip() == reply["body"]


async def test_creator_preview_streams_and_stores_nothing(coaching: Coaching, server: str) -> None:
    creator = await coaching.creator("aiprev")
    await coaching.program(creator, "sleep")
    async with (
        httpx.AsyncClient(base_url=server, timeout=60) as http,
        http.stream(
            "POST",
            "/v1/programs/sleep/preview",
            json={"message": "Hi coach"},
            headers=creator.headers,
        ) as response,
    ):
        assert response.status_code == 200
        events = [e async for e in sse.iterate(response.aiter_lines())]
    assert events[0].event == "token"
    assert events[-1].event == "done"
    assert json.loads(events[-1].data)["completion_tokens"] == 24
    assert await coaching.superuser("SELECT 1 FROM messages") == []
    missing = await coaching.client.post(
        "/v1/programs/nope/preview", json={"message": "Hi"}, headers=creator.headers
    )
    assert missing.status_code == 404


async def test_openai_compatible_provider_against_ollamas_v1(
    coaching: Coaching, ollama: str
) -> None:
    provider = OpenAIProvider(f"{ollama}/v1", "", timeout=60)
    usage = Usage()
    try:
        request = ChatRequest(
            coaching.ollama_stack.chat_model,
            [ChatMessage("system", "You are a coach."), ChatMessage("user", "Hello")],
            temperature=0.5,
            max_tokens=16,
        )
        pieces = [piece async for piece in provider.stream(request, usage)]
    finally:
        with contextlib.suppress(Exception):
            await provider.close()
    assert len(pieces) > 3
    assert "".join(pieces).strip()
    assert usage.completion_tokens == 16
    assert usage.prompt_tokens > 5


async def test_openai_provider_program_replies_end_to_end(
    coaching: Coaching, replies: ReplyPoller, ollama: str
) -> None:
    creator = await coaching.creator("aioai")
    spec = coaching.spec(provider="openai", baseUrl=f"{ollama}/v1")
    program = await coaching.program(creator, "sleep", spec)
    me = await coaching.end_user(creator, program)
    await coaching.send(me, "Hello")
    await coaching.drain(replies)
    (reply,) = await coaching.superuser(
        "SELECT body, completion_tokens, model FROM messages WHERE author = 'ai'"
    )
    assert reply["body"].strip()
    assert reply["completion_tokens"] == 24
    assert reply["model"] == coaching.ollama_stack.chat_model


async def _serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    async with asyncio.timeout(10):
        while not served.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    return served, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def keyed_api(ollama: str) -> AsyncIterator[tuple[str, list[str]]]:
    """An OpenAI-compatible API that wants ``Bearer sk-coach``: Ollama's /v1 behind a check
    of the Authorization header (each header seen is recorded)."""
    seen: list[str] = []
    app = FastAPI()
    upstream = httpx.AsyncClient(base_url=ollama, timeout=60)

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        seen.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") != "Bearer sk-coach":
            return Response('{"error": {"message": "bad key"}}', 401)
        forwarded = upstream.build_request(
            "POST", "/v1/chat/completions", content=await request.body()
        )
        answer = await upstream.send(forwarded, stream=True)
        return StreamingResponse(
            answer.aiter_raw(), answer.status_code, media_type="text/event-stream"
        )

    served, task, base = await _serve(app)
    yield f"{base}/v1", seen
    served.should_exit = True
    await task
    await upstream.aclose()


@pytest.fixture
async def keyed_replies(
    runtime_settings: Settings, ai_settings: AiSettings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[ReplyPoller, Fernet]]:
    """A reply worker that reads provider keys with a credentials key of its own."""
    key = Fernet.generate_key()
    monkeypatch.setenv("COACHOPS_CHANNEL_KEY", key.decode())
    pool = await create_pool(runtime_settings.model_copy(update={"db_pool_size": 4}))
    poller = ReplyPoller(runtime_settings, pool, ai_settings)
    try:
        yield poller, Fernet(key)
    finally:
        await poller.close()
        await pool.close()


async def test_openai_provider_sends_the_programs_api_key_and_falls_back_without_it(
    coaching: Coaching,
    keyed_api: tuple[str, list[str]],
    keyed_replies: tuple[ReplyPoller, Fernet],
) -> None:
    base, seen = keyed_api
    replies, fernet = keyed_replies
    creator = await coaching.creator("aikey")
    spec = coaching.spec(provider="openai", baseUrl=base, apiKeySecretRef="llm")
    keyed = await coaching.program(creator, "keyed", spec)
    # What the operator writes (provider_key.py): the key, encrypted, under the tenant.
    await coaching.tenants.owner(
        creator.creator_id,
        "INSERT INTO provider_credentials (creator_id, program_id, secret_name, secret_hash,"
        " ciphertext) VALUES ($1, $2, 'llm', 'h', $3)",
        creator.creator_id,
        keyed,
        fernet.encrypt(json.dumps({"api-key": "sk-coach"}).encode()),
    )
    unkeyed = await coaching.program(creator, "unkeyed", spec)
    await coaching.send(await coaching.end_user(creator, keyed), "Hello")
    await coaching.drain(replies)
    assert seen == ["Bearer sk-coach"]
    (reply,) = await coaching.superuser(
        "SELECT author, completion_tokens FROM messages WHERE author <> 'end_user'"
    )
    assert (reply["author"], reply["completion_tokens"]) == ("ai", 24)

    # The program without a copied key calls without it and is refused: its end user gets
    # the fallback text (the key of another program is never used).
    me = await coaching.end_user(creator, unkeyed)
    await coaching.send(me, "Hello")

    async def fallback_sent() -> bool:
        await replies.poll()
        return any(m["author"] == "system" for m in await coaching.messages(me))

    await coaching.wait_for(fallback_sent, seconds=60)
    assert len(seen) > 1
    assert "Bearer sk-coach" not in seen[1:]
