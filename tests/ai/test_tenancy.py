"""Tenancy of reply jobs, tested with crafted payloads: a job handled under tenant A never
reads or writes B's conversation, memory or knowledge chunks, whatever ids it names."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.knowledge.ingest import KnowledgePoller
from tests.ai.conftest import Coaching
from tests.ai.test_replies import _ingest

SECRET = "The launch code of tenant B is walrus-42. Only B's coach may know it."


async def _tenant_with_everything(
    coaching: Coaching, name: str
) -> tuple[uuid.UUID, uuid.UUID, dict[str, str]]:
    creator = await coaching.creator(name)
    program = await coaching.program(creator, "sleep")
    me = await coaching.end_user(creator, program)
    return creator.creator_id, program, me


async def test_crafted_jobs_never_cross_tenants(
    coaching: Coaching, replies: ReplyPoller, ingest: KnowledgePoller
) -> None:
    a_id, a_program, a_me = await _tenant_with_everything(coaching, "aitena")
    b_creator = await coaching.creator("aitenb")
    b_program = await coaching.program(b_creator, "sleep")
    b_me = await coaching.end_user(b_creator, b_program)
    upload = await coaching.client.post(
        "/v1/programs/sleep/knowledge",
        files={"file": ("b-secret.md", SECRET.encode(), "text/markdown")},
        headers=b_creator.headers,
    )
    assert upload.status_code == 201
    await _ingest(coaching, ingest)

    b_sent = await coaching.send(b_me, "What is the launch code?")
    b_conversation = uuid.UUID(b_sent["message"]["conversation_id"])
    await coaching.tenants.owner(
        b_creator.creator_id,
        "INSERT INTO conversation_memory (conversation_id, creator_id, summary,"
        " through_message_id) VALUES ($1, $2, 'B memory: walrus', 1)",
        b_conversation,
        b_creator.creator_id,
    )
    (b_job,) = await coaching.superuser("SELECT job_id FROM reply_jobs")

    # 1. B's job handed to the worker under A's tenant: not found, nothing written.
    await replies.process(a_id, b_job["job_id"], 1)
    (row,) = await coaching.superuser(
        "SELECT state, attempts, prompt FROM reply_jobs WHERE job_id = $1", b_job["job_id"]
    )
    assert (row["state"], row["attempts"], row["prompt"]) == ("pending", 0, None)
    assert [m["author"] for m in await coaching.messages(b_me)] == ["end_user"]

    # 2. A job row of A naming B's conversation cannot even be written (tenant-aware key).
    a_sent = await coaching.send(a_me, "Hello")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await coaching.tenants.owner(
            a_id,
            "INSERT INTO reply_jobs (creator_id, program_id, conversation_id, end_user_id,"
            " message_id) VALUES ($1, $2, $3, $4, $5)",
            a_id,
            a_program,
            b_conversation,
            uuid.uuid4(),
            10_000_000,
        )

    # 3. A's own job re-pointed at B's program: the context does not resolve under A, the
    # job fails, and neither B's chunks nor B's memory reach any prompt.
    await coaching.superuser(
        "UPDATE reply_jobs SET program_id = $1 WHERE message_id = $2",
        b_program,
        a_sent["message"]["message_id"],
    )
    await coaching.drain(replies)
    (a_job,) = await coaching.superuser(
        "SELECT state, last_error, prompt FROM reply_jobs WHERE message_id = $1",
        a_sent["message"]["message_id"],
    )
    assert a_job["state"] == "failed"
    assert "this tenant does not have" in a_job["last_error"]
    # B's own job, handled under B, answered with B's knowledge and memory.
    (b_done,) = await coaching.superuser(
        "SELECT state, prompt FROM reply_jobs WHERE job_id = $1", b_job["job_id"]
    )
    assert b_done["state"] == "done"
    b_prompt = json.loads(b_done["prompt"])["system"]
    assert "walrus" in b_prompt
    prompts = await coaching.superuser(
        "SELECT prompt FROM reply_jobs WHERE creator_id = $1 AND prompt IS NOT NULL", a_id
    )
    assert all("walrus" not in json.loads(p["prompt"])["system"] for p in prompts)
    assert [m["author"] for m in await coaching.messages(a_me)] == ["end_user"]
