"""spec.knowledge through the operator: inline text and a ConfigMap become documents, the
runtime's worker ingests them, KnowledgeReady counts them, and a ConfigMap edit lands."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from kubernetes_asyncio import client

from coachops_crds import constants as c
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_operator.vectors import VectorStore as OperatorVectors
from coachops_runtime.kit.db import Session
from coachops_runtime.knowledge.embedding import Embedder
from coachops_runtime.knowledge.retrieval import Passage, retrieve
from coachops_runtime.knowledge.vectors import VectorStore
from tests.knowledge import documents
from tests.operator_suite.conftest import (
    Kube,
    Models,
    Operator,
    condition,
    eventually,
    wait_ready,
)

FACT = "The coach's secret recovery drink is beetroot juice with ginger and sea salt."
NEW_FACT = "The coach's secret recovery drink is now tart cherry juice with honey."
QUESTION = "What is the secret recovery drink?"


@pytest.fixture
async def worker(stack: Stack, models: Models, tmp_path: Path) -> AsyncIterator[ManagedProcess]:
    """The runtime's worker on the operator's database, with Chroma and Ollama."""
    process = ManagedProcess(
        "knowledge-worker",
        [sys.executable, "-m", "coachops_runtime.worker"],
        tmp_path / "worker.log",
        env={
            "COACHOPS_DATABASE_URL": stack.postgres.runtime_dsn,
            "COACHOPS_REDIS_URL": stack.redis.url,
            "COACHOPS_CHROMA_URL": stack.chroma.url,
            "COACHOPS_OLLAMA_URL": models.stack.base_url,
            "COACHOPS_MODEL_REGISTRY": models.registry,
            "COACHOPS_WORKER_POLL_SECONDS": "0.2",
            "KUBECONFIG": "",
            "PYTHONUNBUFFERED": "1",
        },
    )
    process.start()

    async def started() -> bool:
        return "worker started" in process.log_path.read_text(errors="replace")

    await process.wait_ready(started, timeout=30)
    try:
        yield process
    finally:
        process.stop()


async def _ask(stack: Stack, models: Models, creator: str, program: Any) -> list[Passage]:
    conn = await asyncpg.connect(stack.postgres.runtime_dsn)
    store = VectorStore(stack.chroma.url)
    embedder = Embedder(models.stack.base_url, registry=models.registry)
    try:
        session = Session(conn)
        await session.set_tenant(c.tenant_id(creator))
        try:
            return await retrieve(session, store, embedder, program, QUESTION, top_k=1)
        finally:
            await session.finish(commit=False)
    finally:
        await store.close()
        await embedder.close()
        await conn.close()


async def test_inline_and_configmap_knowledge_is_ingested_and_an_edit_lands(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    stack: Stack,
    models: Models,
    worker: ManagedProcess,
    superuser: asyncpg.Connection,
) -> None:
    name = new_creator_name("know")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name, timeout=90)
    namespace = c.creator_namespace(name)
    binary = {
        "manual.pdf": base64.b64encode(documents.pdf(["Stretch for ten minutes."])).decode(),
        "notes.docx": base64.b64encode(
            documents.docx_file([("Food", "Eat vegetables at lunch.")])
        ).decode(),
    }
    await kube.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="guide"),
            data={
                "recovery.md": f"# Recovery\n\n{FACT}\n",
                "tips.txt": "Sleep eight hours.",
                "page.html": "<html><body><h1>Walks</h1><p>Walk after dinner.</p></body></html>",
            },
            binary_data=binary,
        ),
    )
    await kube.create_program(
        name,
        "coach",
        knowledge=[
            {"name": "guide", "configMapRef": "guide"},
            {"name": "intro", "text": "Welcome to the program. We start with walking."},
        ],
    )
    program = c.program_id(name, "coach")

    async def ingested() -> dict[str, Any] | None:
        obj = await kube.program(name, "coach")
        found = condition(obj, "KnowledgeReady")
        return obj if found.get("reason") == "Ingested" else None

    try:
        obj = await eventually(ingested, timeout=120, interval=1)
    except AssertionError:
        found = await kube.program(name, "coach")
        log = worker.log_path.read_text()[-3000:]
        status = (found or {}).get("status")
        raise AssertionError(f"not ingested: {status}; worker log: {log}") from None
    assert condition(obj, "KnowledgeReady")["status"] == "True"
    assert "6/6 documents ready" in condition(obj, "KnowledgeReady")["message"]
    assert obj["status"]["knowledgeChunks"] >= 6
    rows = await superuser.fetch(
        "SELECT name, origin, content_type, state FROM knowledge_documents"
        " WHERE program_id = $1 ORDER BY name",
        program,
    )
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert [(r["name"], r["origin"], r["content_type"], r["state"]) for r in rows] == [
        ("guide/manual.pdf", "spec", "application/pdf", "ready"),
        ("guide/notes.docx", "spec", docx, "ready"),
        ("guide/page.html", "spec", "text/html", "ready"),
        ("guide/recovery.md", "spec", "text/markdown", "ready"),
        ("guide/tips.txt", "spec", "text/plain", "ready"),
        ("intro", "spec", "text/plain", "ready"),
    ]
    (best,) = await _ask(stack, models, name, program)
    assert "beetroot" in best.text
    assert best.source == "guide/recovery.md"
    assert best.section == "Recovery"

    # An edit of the ConfigMap: one key changed, one removed.
    await kube.core.replace_namespaced_config_map(
        "guide",
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="guide"),
            data={"recovery.md": f"# Recovery\n\n{NEW_FACT}\n", "page.html": "<p>Walk.</p>"},
            binary_data=binary,
        ),
    )
    edited = time.monotonic()

    async def picked_up() -> bool:
        names = await superuser.fetch(
            "SELECT name FROM knowledge_documents"
            " WHERE program_id = $1 AND state <> 'deleting' ORDER BY name",
            program,
        )
        return [r["name"] for r in names] == [
            "guide/manual.pdf",
            "guide/notes.docx",
            "guide/page.html",
            "guide/recovery.md",
            "intro",
        ]

    await eventually(picked_up, timeout=30, interval=0.5)
    assert time.monotonic() - edited <= 30

    async def answers_new_fact() -> list[Passage] | None:
        passages = await _ask(stack, models, name, program)
        return passages if passages and "cherry" in passages[0].text else None

    await eventually(answers_new_fact, timeout=60, interval=1)
    store = VectorStore(stack.chroma.url)
    try:
        collection = store.collection(name, program)
        assert await collection.ids({"source": "guide/tips.txt"}) == []
        assert await collection.ids({"source": "guide/recovery.md"})
    finally:
        await store.close()
    obj = await eventually(ingested, timeout=60, interval=1)
    assert "5/5 documents ready" in condition(obj, "KnowledgeReady")["message"]


async def test_deleting_a_program_under_reclaim_delete_removes_its_collection(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    stack: Stack,
    worker: ManagedProcess,
    superuser: asyncpg.Connection,
) -> None:
    name = new_creator_name("knowdel")
    creators.append(name)
    await kube.create_creator(name, reclaimPolicy="Delete")
    await wait_ready(kube, name, timeout=90)
    await kube.create_program(name, "coach", knowledge=[{"name": "intro", "text": FACT}])
    program = c.program_id(name, "coach")

    async def ingested() -> bool:
        found = condition(await kube.program(name, "coach"), "KnowledgeReady")
        return found.get("reason") == "Ingested"

    await eventually(ingested, timeout=120, interval=1)
    store = VectorStore(stack.chroma.url)
    try:
        collection = store.collection(name, program)
        assert await collection.count() >= 1
        await kube.objects.delete_namespaced_custom_object(
            c.GROUP, c.VERSION, c.creator_namespace(name), c.PROGRAM_PLURAL, "coach"
        )

        async def removed() -> bool:
            gone = await kube.program(name, "coach") is None
            # A fresh client: the collection id looked up before must not be reused.
            return gone and await store.collection(name, program).count() == 0

        await eventually(removed, timeout=60, interval=1)
        names = await store_collections(stack, name)
        assert c.chroma_collection(program) not in names
    finally:
        await store.close()
    rows = await superuser.fetch("SELECT 1 FROM knowledge_documents WHERE program_id = $1", program)
    assert rows == []


async def store_collections(stack: Stack, creator: str) -> list[str]:
    vectors = OperatorVectors(stack.chroma.url)
    try:
        return await vectors.collections(c.chroma_tenant(creator), c.CHROMA_DATABASE)
    finally:
        await vectors.close()
