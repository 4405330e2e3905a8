"""Ingestion end to end: every format through the API, the worker's poller, Chroma and
Ollama; retrieval of a planted fact; idempotence, replacement, deletion, failures and
tenant isolation of the vectors."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from coachops_devstack.ollama import (
    EMBEDDING_PARAMETERS,
    OllamaStack,
    create_model,
    delete_model,
)
from coachops_runtime.kit.db import Session
from coachops_runtime.knowledge.embedding import Embedder
from coachops_runtime.knowledge.ingest import KnowledgePoller
from coachops_runtime.knowledge.retrieval import Passage, retrieve
from coachops_runtime.knowledge.vectors import VectorStore
from tests.knowledge import documents
from tests.knowledge.conftest import Knowledge
from tests.runtime.conftest import Creator

FACT = "The coach's secret recovery drink is beetroot juice with ginger and sea salt."
QUESTION = "What is the secret recovery drink?"


@pytest.fixture
def embedder(ollama_stack: OllamaStack) -> Embedder:
    return Embedder(ollama_stack.base_url)


async def ask(
    poller: KnowledgePoller,
    embedder: Embedder,
    creator: Creator,
    program: uuid.UUID,
    question: str = QUESTION,
    top_k: int = 3,
) -> list[Passage]:
    """Retrieval as the runtime runs it: a session bound to the creator's tenant."""
    async with poller.pool.acquire() as connection:
        session = Session(connection)
        await session.set_tenant(creator.creator_id)
        try:
            return await retrieve(
                session, poller.store, embedder, program, question, top_k=top_k, max_distance=2
            )
        finally:
            await session.finish(commit=False)


def formats_with_the_fact() -> dict[str, tuple[bytes, str]]:
    prose = documents.filler(400)
    return {
        "fact.txt": (f"{prose}\n\n{FACT}\n\n{prose}".encode(), "text/plain"),
        "fact.md": (f"# Habits\n\n{prose}\n\n## Recovery\n\n{FACT}\n".encode(), "text/markdown"),
        "fact.html": (
            f"<html><head><title>Recovery</title><script>x()</script></head><body>"
            f"<p>{prose}</p><h2>Drinks</h2><p>{FACT}</p></body></html>".encode(),
            "text/html",
        ),
        "fact.pdf": (
            documents.pdf([documents.filler(300, 1), documents.filler(300, 2), FACT]),
            "application/pdf",
        ),
        "fact.docx": (
            documents.docx_file([("Habits", prose), ("Recovery", FACT)]),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    }


async def test_every_format_is_ingested_and_the_planted_fact_is_retrieved(
    knowledge: Knowledge,
    poller: KnowledgePoller,
    vectors: VectorStore,
    embedder: Embedder,
    ollama_stack: OllamaStack,
) -> None:
    assert ollama_stack.embedding_is_minilm, "retrieval needs the real all-MiniLM-L6-v2 weights"
    creator = await knowledge.creator("kformats")
    for filename, (content, media) in formats_with_the_fact().items():
        program_name = "p-" + filename.replace(".", "-")
        program = await knowledge.program(creator, program_name)
        response = await knowledge.upload(creator, program_name, filename, content, media)
        assert response.status_code == 201, response.text
        await knowledge.drain(poller)
        (document,) = await knowledge.documents(creator, program_name)
        assert document["state"] == "ready", document
        assert document["progress"] == 1
        assert document["error"] is None
        stored = await vectors.collection(creator.name, program).count()
        assert stored == document["chunk_count"] > 1, (filename, stored)

        passages = await ask(poller, embedder, creator, program)
        best = passages[0]
        assert "beetroot juice" in best.text, (filename, passages)
        assert best.source == filename
        assert best.end > best.start >= 0
        if filename.endswith(".pdf"):
            assert best.page == 3
        else:
            assert best.page is None
        if filename.endswith((".md", ".docx")):
            assert best.section == "Recovery"


async def test_reupload_adds_nothing_replacement_and_deletion_remove_chunks(
    knowledge: Knowledge, poller: KnowledgePoller, vectors: VectorStore, embedder: Embedder
) -> None:
    creator = await knowledge.creator("kcycle")
    program = await knowledge.program(creator, "habits")
    collection = vectors.collection(creator.name, program)
    first = documents.pdf([documents.filler(300, n) for n in range(4)] + [FACT])
    response = await knowledge.upload(creator, "habits", "guide.pdf", first, "application/pdf")
    document_id = response.json()["document_id"]
    await knowledge.drain(poller)
    count = await collection.count()
    ids = set(await collection.ids({"document_id": document_id}))
    assert count == len(ids) > 0

    again = await knowledge.upload(creator, "habits", "guide.pdf", first, "application/pdf")
    assert again.status_code == 200
    await knowledge.drain(poller)
    assert await collection.count() == count
    assert set(await collection.ids({"document_id": document_id})) == ids

    # Requeued by hand (as a retry would be): the same ids are written again, none added.
    await knowledge.tenants.owner(
        creator.creator_id,
        "UPDATE knowledge_documents SET state = 'pending' WHERE document_id = $1",
        uuid.UUID(document_id),
    )
    await knowledge.drain(poller)
    assert set(await collection.ids({"document_id": document_id})) == ids

    # New content under the same name: only the new version's chunks remain.
    second = documents.pdf(["Rest days are part of training. Sleep eight hours."])
    replaced = await knowledge.upload(creator, "habits", "guide.pdf", second, "application/pdf")
    assert replaced.status_code == 200
    await knowledge.drain(poller)
    now = set(await collection.ids({"document_id": document_id}))
    assert now
    assert not now & ids
    assert await collection.count() == len(now)
    assert all("beetroot" not in p.text for p in await ask(poller, embedder, creator, program))

    deleted = await knowledge.client.delete(
        f"/v1/programs/habits/knowledge/{document_id}", headers=creator.headers
    )
    assert deleted.status_code == 202
    await knowledge.drain(poller)
    assert await collection.count() == 0
    assert await knowledge.superuser("SELECT 1 FROM knowledge_documents") == []


async def test_a_corrupt_or_encrypted_pdf_fails_alone(
    knowledge: Knowledge, poller: KnowledgePoller, vectors: VectorStore
) -> None:
    creator = await knowledge.creator("kcorrupt")
    program = await knowledge.program(creator, "habits")
    uploads = {
        "good.pdf": documents.pdf([FACT]),
        "broken.pdf": documents.corrupt_pdf(documents.filler(500)),
        "locked.pdf": documents.encrypted_pdf(FACT),
        "notes.txt": FACT.encode(),
    }
    for name, content in uploads.items():
        media = "text/plain" if name.endswith(".txt") else "application/pdf"
        response = await knowledge.upload(creator, "habits", name, content, media)
        assert response.status_code == 201, response.text
    await knowledge.drain(poller)
    states = {d["name"]: d for d in await knowledge.documents(creator, "habits")}
    assert states["good.pdf"]["state"] == "ready"
    assert states["notes.txt"]["state"] == "ready"
    assert states["broken.pdf"]["state"] == "failed"
    assert "PDF cannot be read" in states["broken.pdf"]["error"]
    assert states["locked.pdf"]["state"] == "failed"
    assert "encrypted" in states["locked.pdf"]["error"]
    collection = vectors.collection(creator.name, program)
    for name in ("broken.pdf", "locked.pdf"):
        assert await collection.ids({"document_id": states[name]["document_id"]}) == []
    assert await collection.count() == sum(
        states[n]["chunk_count"] for n in ("good.pdf", "notes.txt")
    )


async def test_retrieval_never_crosses_programs_or_creators(
    knowledge: Knowledge, poller: KnowledgePoller, vectors: VectorStore, embedder: Embedder
) -> None:
    a = await knowledge.creator("kalpha")
    b = await knowledge.creator("kbeta")
    a1 = await knowledge.program(a, "one")
    a2 = await knowledge.program(a, "two")
    b1 = await knowledge.program(b, "one")
    # The same fact in each, told apart by the source name.
    for creator, program_name in ((a, "one"), (a, "two"), (b, "one")):
        name = f"{creator.name}-{program_name}.txt"
        response = await knowledge.upload(creator, program_name, name, FACT.encode(), "text/plain")
        assert response.status_code == 201
    await knowledge.drain(poller)

    def sources(passages: list[Passage]) -> set[str]:
        return {p.source for p in passages}

    assert sources(await ask(poller, embedder, a, a1, top_k=10)) == {"kalpha-one.txt"}
    assert sources(await ask(poller, embedder, a, a2, top_k=10)) == {"kalpha-two.txt"}
    assert sources(await ask(poller, embedder, b, b1, top_k=10)) == {"kbeta-one.txt"}
    # A session bound to A cannot reach B's program even by its id.
    assert await ask(poller, embedder, a, b1, top_k=10) == []
    # In Chroma, B's vectors live in B's tenant only: A's tenant has no such collection,
    # and A's collections hold none of B's chunks.
    assert await vectors.collection(a.name, b1).count() == 0
    b_ids = set(await vectors.collection(b.name, b1).ids({"origin": "upload"}))
    assert b_ids
    for program in (a1, a2):
        assert not b_ids & set(await vectors.collection(a.name, program).ids({"origin": "upload"}))


async def test_deleting_the_program_mid_ingestion_neither_waits_nor_leaves_work(
    knowledge: Knowledge, poller: KnowledgePoller
) -> None:
    creator = await knowledge.creator("kgone")
    program = await knowledge.program(creator, "habits")
    pages = [documents.filler(350, n) for n in range(60)]
    response = await knowledge.upload(
        creator, "habits", "big.pdf", documents.pdf(pages), "application/pdf"
    )
    assert response.status_code == 201
    ingesting = asyncio.ensure_future(poller.ingest_one())
    async with asyncio.timeout(60):
        while True:
            (document,) = await knowledge.documents(creator, "habits")
            if document["progress"] > 0:
                break
            await asyncio.sleep(0.05)
    # The program goes (as the operator deletes it) while the worker holds the document.
    async with asyncio.timeout(5):
        await knowledge.tenants.owner(
            creator.creator_id, "DELETE FROM programs WHERE program_id = $1", program
        )
    assert await ingesting
    await knowledge.drain(poller)
    assert await knowledge.superuser("SELECT * FROM knowledge_due") == []
    assert await knowledge.superuser("SELECT * FROM knowledge_documents") == []


async def test_a_model_not_yet_pulled_is_waited_for_not_failed(
    knowledge: Knowledge, poller: KnowledgePoller, ollama_stack: OllamaStack
) -> None:
    model = f"coachops/later-{uuid.uuid4().hex[:6]}:latest"
    knowledge.embedding_model = model
    creator = await knowledge.creator("kwait")
    await knowledge.program(creator, "habits")
    response = await knowledge.upload(creator, "habits", "a.txt", FACT.encode(), "text/plain")
    assert response.status_code == 201
    for _ in range(3):
        assert await poller.ingest_one()
        (document,) = await knowledge.documents(creator, "habits")
        assert document["state"] == "pending", document
        assert document["error"].startswith("waiting: Ollama answered 404"), document
        await asyncio.sleep(0.3)  # past the (test's short) wait
    (attempts,) = await knowledge.superuser("SELECT attempts FROM knowledge_documents")
    assert attempts["attempts"] == 0

    # The model arrives (as the operator's pull would bring it): ingestion goes on.
    async with httpx.AsyncClient(base_url=ollama_stack.base_url, timeout=120) as http:
        await create_model(http, model, ollama_stack.embedding, parameters=EMBEDDING_PARAMETERS)
        try:
            await knowledge.drain(poller)
        finally:
            await delete_model(http, model)
    (document,) = await knowledge.documents(creator, "habits")
    assert document["state"] == "ready", document
    assert document["error"] is None


async def test_one_poll_ingests_documents_side_by_side(
    knowledge: Knowledge, poller: KnowledgePoller
) -> None:
    creator = await knowledge.creator("klanes")
    await knowledge.program(creator, "habits")
    for n in range(2):
        pages = [documents.filler(300, n + page) for page in range(8)]
        response = await knowledge.upload(
            creator, "habits", f"{n}.pdf", documents.pdf(pages), "application/pdf"
        )
        assert response.status_code == 201
    assert poller.settings.knowledge_concurrency == 2
    assert await poller.poll() == 2
    rows = await knowledge.superuser("SELECT state FROM knowledge_documents")
    assert [r["state"] for r in rows] == ["ready", "ready"]
    assert await poller.poll() == 0
