"""Faults: a worker killed mid-generation, and Ollama down. Every message still gets exactly
one AI reply; while Ollama is down the end user gets the fallback text once and the
conversation is flagged, and the real answer follows when Ollama is back."""

from __future__ import annotations

import asyncio
import json

import pytest

from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.kit.settings import Settings
from tests.ai.conftest import Coaching, StartWorker
from tests.ollama.conftest import OllamaFault


@pytest.mark.slow
async def test_kill_9_mid_generation_every_message_gets_exactly_one_reply(
    coaching: Coaching, runtime_settings: Settings, start_worker: StartWorker
) -> None:
    creator = await coaching.creator("aikill")
    # Long replies (the tiny model stops only at the limit), so generations are in flight.
    program = await coaching.program(creator, "sleep", coaching.spec(maxTokens=400))
    users = [await coaching.end_user(creator, program) for _ in range(10)]
    sent = []
    for n in range(20):
        sent.append(await coaching.send(users[n % 10], f"Message {n}: how do I sleep better?"))
    ai = {"lease_seconds": 4, "concurrency": 4}
    worker = await start_worker(runtime_settings, "worker-1", **ai)

    async def some_done() -> bool:
        rows = await coaching.superuser("SELECT count(*) AS n FROM reply_jobs WHERE state = 'done'")
        return int(rows[0]["n"]) >= 3

    await coaching.wait_for(some_done)
    worker.kill()
    (partial,) = await coaching.superuser(
        "SELECT count(*) AS n FROM reply_jobs WHERE state = 'done'"
    )
    assert partial["n"] < 20, "the worker was killed too late to prove anything"

    await start_worker(runtime_settings, "worker-2", **ai)

    async def all_done() -> bool:
        return await coaching.pending_jobs() == 0

    await coaching.wait_for(all_done, seconds=300)
    replies = await coaching.superuser(
        "SELECT reply_to, count(*) AS n FROM messages WHERE author = 'ai' GROUP BY reply_to"
    )
    counts = {row["reply_to"]: row["n"] for row in replies}
    assert counts == {s["message"]["message_id"]: 1 for s in sent}
    jobs = await coaching.superuser("SELECT state FROM reply_jobs")
    assert {row["state"] for row in jobs} == {"done"}
    # Each end user's two replies came in the order of their messages.
    for me in users:
        authors = [(m["author"], m["reply_to"]) for m in await coaching.messages(me)]
        answered = [reply_to for author, reply_to in authors if author == "ai"]
        assert answered == sorted(answered)


@pytest.mark.slow
async def test_ollama_down_fallback_then_the_real_answer(
    coaching: Coaching, replies: ReplyPoller, ollama_fault: OllamaFault
) -> None:
    creator = await coaching.creator("aidown")
    spec = coaching.spec(fallbackText="Back soon, your message is safe.")
    program = await coaching.program(creator, "sleep", spec)
    me = await coaching.end_user(creator, program)
    ollama_fault.stop()
    sent = await coaching.send(me, "Are you there?")
    message_id = sent["message"]["message_id"]

    async def fallback_sent() -> bool:
        await replies.poll()
        return any(m["author"] == "system" for m in await coaching.messages(me))

    await coaching.wait_for(fallback_sent, seconds=60)
    for _ in range(3):  # retries while Ollama is still down send no second fallback
        await asyncio.sleep(0.6)
        await replies.poll()
    messages = await coaching.messages(me)
    assert [(m["author"], m["body"], m["reply_to"]) for m in messages[1:]] == [
        ("system", "Back soon, your message is safe.", message_id)
    ]
    conversation = messages[0]["conversation_id"]
    flagged = await coaching.client.get(
        f"/v1/conversations/{conversation}", headers=creator.headers
    )
    assert flagged.json()["ai_unavailable_since"] is not None
    (job,) = await coaching.superuser("SELECT state, attempts, last_error FROM reply_jobs")
    assert job["state"] == "pending"
    assert job["attempts"] >= 2
    assert "unreachable" in job["last_error"] or "timed out" in job["last_error"]

    await ollama_fault.start()
    await coaching.drain(replies)
    messages = await coaching.messages(me)
    assert [(m["author"], m["reply_to"]) for m in messages] == [
        ("end_user", None),
        ("system", message_id),
        ("ai", message_id),
    ]
    assert messages[2]["body"].strip()
    cleared = await coaching.client.get(
        f"/v1/conversations/{conversation}", headers=creator.headers
    )
    assert cleared.json()["ai_unavailable_since"] is None
    # The stream told the story: fallback first, then the tokens and done.
    response = await coaching.client.get(sent["reply_stream"], headers=me)
    events = [line for line in response.text.splitlines() if line.startswith("event:")]
    assert events[0] == "event: fallback"
    assert events[-1] == "event: done"
    fallback = json.loads(response.text.split("data: ", 1)[1].splitlines()[0])
    assert fallback["text"] == "Back soon, your message is safe."
