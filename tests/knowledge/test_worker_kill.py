"""kill -9 of the worker mid-ingestion: the restarted worker finishes the document and the
collection holds each chunk once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.vectors import VectorStore
from tests.knowledge import documents
from tests.knowledge.conftest import Knowledge, StartWorker
from tests.runtime.conftest import Creator


async def _document(knowledge: Knowledge, creator: Creator) -> dict[str, Any]:
    (document,) = await knowledge.documents(creator, "habits")
    return document


@pytest.mark.slow
async def test_kill_9_mid_ingestion_then_restart_finishes_without_duplicates(
    knowledge: Knowledge,
    runtime_settings: Settings,
    vectors: VectorStore,
    start_worker: StartWorker,
) -> None:
    creator = await knowledge.creator("kkill")
    program = await knowledge.program(creator, "habits")
    pages = [documents.filler(350, n) + f" Page marker {n}." for n in range(120)]
    response = await knowledge.upload(
        creator, "habits", "big.pdf", documents.pdf(pages), "application/pdf"
    )
    assert response.status_code == 201
    settings = runtime_settings.model_copy(update={"knowledge_embed_batch": 8})
    worker = await start_worker(settings, "worker-1")
    async with asyncio.timeout(120):
        while (document := await _document(knowledge, creator))["progress"] < 0.2:
            assert document["state"] in ("pending", "ingesting"), document
            await asyncio.sleep(0.05)
    worker.kill()
    killed = await _document(knowledge, creator)
    assert killed["state"] == "ingesting", killed
    collection = vectors.collection(creator.name, program)
    partial = await collection.count()
    assert partial > 0

    await start_worker(settings, "worker-2")
    async with asyncio.timeout(180):
        while (document := await _document(knowledge, creator))["state"] != "ready":
            assert document["state"] in ("pending", "ingesting"), document
            await asyncio.sleep(0.2)
    assert document["chunk_count"] > partial
    assert await collection.count() == document["chunk_count"]
    ids = await collection.ids({"document_id": document["document_id"]})
    assert len(ids) == len(set(ids)) == document["chunk_count"]
