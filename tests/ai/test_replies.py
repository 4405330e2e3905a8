"""End to end: an end user's message becomes exactly one AI reply, streamed and stored, with
the persona in the prompt, knowledge cited, memory kept and tokens counted."""

from __future__ import annotations

import json
from typing import Any

import httpx

from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.knowledge.ingest import KnowledgePoller
from tests.ai import sse
from tests.ai.conftest import Coaching

FACT = (
    "The Juniper evening routine: lights out at 22:15, and the bedroom kept at 18 degrees. "
    "Screens go off at 21:30 so melatonin can rise."
)


async def _ingest(coaching: Coaching, ingest: KnowledgePoller) -> None:
    import asyncio

    async with asyncio.timeout(120):
        while True:
            await ingest.poll()
            rows = await coaching.superuser(
                "SELECT count(*) AS n FROM knowledge_documents WHERE state <> 'ready'"
            )
            if rows[0]["n"] == 0:
                return
            await asyncio.sleep(0.1)


async def _stream(client: httpx.AsyncClient, me: dict[str, str], url: str, **headers: str) -> Any:
    response = await client.get(url, headers={**me, **headers})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse.parse(response.text)


async def test_message_gets_one_streamed_reply_with_persona_and_citation(
    coaching: Coaching, replies: ReplyPoller, ingest: KnowledgePoller
) -> None:
    creator = await coaching.creator("aiend")
    program = await coaching.program(creator, "sleep")
    upload = await coaching.client.post(
        "/v1/programs/sleep/knowledge",
        files={"file": ("juniper-routine.md", FACT.encode(), "text/markdown")},
        headers=creator.headers,
    )
    assert upload.status_code == 201, upload.text
    await _ingest(coaching, ingest)
    me = await coaching.end_user(creator, program)

    accepted = await coaching.send(me, "What time is lights out in the Juniper evening routine?")
    assert accepted["reply"] == "queued"
    message_id = accepted["message"]["message_id"]
    assert accepted["reply_stream"] == f"/v1/me/messages/{message_id}/reply"
    await coaching.drain(replies)

    messages = await coaching.messages(me)
    assert [m["author"] for m in messages] == ["end_user", "ai"]
    reply = messages[1]
    assert reply["reply_to"] == message_id
    assert reply["body"].strip()
    (citation, *_) = reply["citations"]
    assert citation["source"] == "juniper-routine.md"
    assert citation["number"] == 1
    assert "22:15" in citation["snippet"] or "Juniper" in citation["snippet"]

    # The stored prompt: persona, the end user, the numbered source; tokens were counted.
    (job,) = await coaching.superuser(
        "SELECT state, prompt, reply_message_id FROM reply_jobs WHERE message_id = $1",
        message_id,
    )
    prompt = json.loads(job["prompt"])
    assert job["state"] == "done"
    assert job["reply_message_id"] == reply["message_id"]
    assert "You are Coach Juniper" in prompt["system"]
    assert "Robin" in prompt["system"]
    assert "[1] (juniper-routine.md)" in prompt["system"]
    assert "22:15" in prompt["system"]
    # Neither the end user nor the program names a zone: the local time is UTC's.
    assert "(UTC)." in prompt["system"]
    assert prompt["tokens"]["knowledge"] > 0
    (usage,) = await coaching.superuser(
        "SELECT prompt_tokens, completion_tokens, model FROM messages WHERE message_id = $1",
        reply["message_id"],
    )
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["model"] == coaching.ollama_stack.chat_model

    # SSE: the tokens add up to the stored reply and the stream ends with done.
    events = await _stream(coaching.client, me, accepted["reply_stream"])
    assert events[-1].event == "done"
    done = json.loads(events[-1].data)
    assert done["message_id"] == reply["message_id"]
    assert done["citations"][0]["source"] == "juniper-routine.md"
    text = "".join(e.data for e in events if e.event == "token")
    assert text.strip() == reply["body"]
    # Resuming after the third event gives exactly the rest: no gap, no repeat.
    cut = events[2].id
    rest = await _stream(coaching.client, me, accepted["reply_stream"], **{"Last-Event-ID": cut})
    assert [e.id for e in rest] == [e.id for e in events[3:]]
    bad = await coaching.client.get(
        accepted["reply_stream"], headers={**me, "Last-Event-ID": "not-an-id"}
    )
    assert bad.status_code == 422

    usage_report = await coaching.client.get("/v1/creator/usage/ai", headers=creator.headers)
    (row,) = usage_report.json()["items"]
    assert (row["program"], row["replies"]) == ("sleep", 1)
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    (today,) = (await coaching.client.get("/v1/analytics/daily", headers=creator.headers)).json()
    assert (today["ai_replies"], today["prompt_tokens"], today["completion_tokens"]) == (
        1,
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    month = (await coaching.client.get("/v1/creator/usage", headers=creator.headers)).json()
    assert month["ai"] == {
        "replies": 1,
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
    }


async def test_second_message_sees_the_first_exchange_and_memory_is_summarized(
    coaching: Coaching, replies: ReplyPoller
) -> None:
    creator = await coaching.creator("aimem")
    program = await coaching.program(creator, "sleep")
    me = await coaching.end_user(creator, program)
    first = await coaching.send(me, "I wake up at 4am every night.")
    second = await coaching.send(me, "What should I try first?")
    await coaching.drain(replies)
    messages = await coaching.messages(me)
    assert [(m["author"], m.get("reply_to")) for m in messages] == [
        ("end_user", None),
        ("end_user", None),
        ("ai", first["message"]["message_id"]),
        ("ai", second["message"]["message_id"]),
    ]
    # Replies in order; the second prompt carried the first exchange.
    (job,) = await coaching.superuser(
        "SELECT prompt FROM reply_jobs WHERE message_id = $1", second["message"]["message_id"]
    )
    assert json.loads(job["prompt"])["tokens"]["history_turns"] == 2

    for n in range(4):
        await coaching.send(me, f"Night {n}: still waking up early.")
        await coaching.drain(replies)
    conversation = messages[0]["conversation_id"]
    memory = await coaching.client.get(
        f"/v1/conversations/{conversation}/memory", headers=creator.headers
    )
    assert memory.status_code == 200, memory.text
    assert memory.json()["through_message_id"] > 0
    assert memory.json()["summary"]


async def test_paused_conversation_gets_no_reply_and_quota_comes_back(
    coaching: Coaching, replies: ReplyPoller
) -> None:
    creator = await coaching.creator("aipause", plan={"messagesPerMonth": 5})
    program = await coaching.program(creator, "sleep")
    me = await coaching.end_user(creator, program)
    sent = await coaching.send(me, "Hello coach")
    used = (await coaching.client.get("/v1/creator/usage", headers=creator.headers)).json()
    assert used["messages_used"] == 1  # reserved when the message arrived
    conversation = sent["message"]["conversation_id"]
    paused = await coaching.client.post(
        f"/v1/conversations/{conversation}/pause", headers=creator.headers
    )
    assert paused.status_code == 200
    await coaching.drain(replies)
    assert [m["author"] for m in await coaching.messages(me)] == ["end_user"]
    (job,) = await coaching.superuser("SELECT state FROM reply_jobs")
    assert job["state"] == "skipped"
    used = (await coaching.client.get("/v1/creator/usage", headers=creator.headers)).json()
    assert used["messages_used"] == 0


async def test_daily_limit_answers_429_with_a_clear_problem(
    coaching: Coaching, replies: ReplyPoller
) -> None:
    creator = await coaching.creator("aidaily")
    spec = coaching.spec()
    spec["limits"] = {"messagesPerUserPerDay": 2}
    program = await coaching.program(creator, "sleep", spec)
    me = await coaching.end_user(creator, program)
    await coaching.send(me, "one")
    await coaching.send(me, "two")
    over = await coaching.client.post("/v1/me/messages", json={"body": "three"}, headers=me)
    assert over.status_code == 429
    assert over.headers["content-type"] == "application/problem+json"
    assert over.json()["type"].endswith("/daily-limit")
    assert "2 messages a day" in over.json()["detail"]
    assert int(over.headers["Retry-After"]) >= 1
    assert len(await coaching.messages(me)) == 2  # the refused message is not stored


async def test_active_goals_are_in_the_prompt(coaching: Coaching, replies: ReplyPoller) -> None:
    creator = await coaching.creator("aigoal")
    # The end user has no zone of her own: the prompt's local time is the program's.
    spec = {**coaching.spec(), "proactive": {"timeZone": "Asia/Tokyo"}}
    program = await coaching.program(creator, "sleep", spec)
    me = await coaching.end_user(creator, program)
    goal = await coaching.client.post(
        "/v1/me/goals",
        json={"title": "Sleep seven hours", "target_date": "2027-01-31"},
        headers=me,
    )
    assert goal.status_code == 201, goal.text
    sent = await coaching.send(me, "How am I doing?")
    await coaching.drain(replies)
    (job,) = await coaching.superuser(
        "SELECT prompt FROM reply_jobs WHERE message_id = $1", sent["message"]["message_id"]
    )
    system = json.loads(job["prompt"])["system"]
    assert "- Sleep seven hours (by 2027-01-31)" in system
    assert "(Asia/Tokyo)." in system


async def test_crisis_message_gets_the_safety_reply_instead_of_the_model(
    coaching: Coaching, replies: ReplyPoller
) -> None:
    creator = await coaching.creator("aicrisis", plan={"messagesPerMonth": 10})
    program = await coaching.program(creator, "sleep")
    me = await coaching.end_user(creator, program)
    sent = await coaching.send(me, "I want to kill myself tonight.")
    await coaching.drain(replies)
    messages = await coaching.messages(me)
    assert [(m["author"], m["reply_to"]) for m in messages] == [
        ("end_user", None),
        ("ai", sent["message"]["message_id"]),
    ]
    (stored,) = await coaching.superuser(
        "SELECT model, completion_tokens FROM messages WHERE author = 'ai'"
    )
    assert (stored["model"], stored["completion_tokens"]) == (None, None)  # no generation
    conversation = await coaching.client.get(
        f"/v1/conversations/{messages[0]['conversation_id']}", headers=creator.headers
    )
    assert conversation.json()["ai_paused"] is True
    events = await coaching.client.get("/v1/safety-events", headers=creator.headers)
    assert [e["kind"] for e in events.json()["items"]] == ["crisis"]
    used = (await coaching.client.get("/v1/creator/usage", headers=creator.headers)).json()
    assert used["messages_used"] == 0  # nothing generated: the reservation went back
    stream = await _stream(coaching.client, me, sent["reply_stream"])
    assert [e.event for e in stream] == ["token", "done"]
    assert stream[0].data == messages[1]["body"]
