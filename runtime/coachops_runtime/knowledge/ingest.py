"""The knowledge poller: parse, chunk, embed and store due documents, one pipeline for all.

Each document is claimed in a transaction that stays open while it is ingested (the
claim's row lock keeps other workers off it; a worker that dies releases it with its
connection). The document is read and its outcome written in that transaction under its
tenant's RLS context; progress goes through short transactions of their own.

Chunk ids derive from the program, the document, its sha256 and the chunk's place and
text, so a retry or a restart mid-ingestion rewrites the same vectors. A document is
ready only once every chunk is stored and the chunks of its earlier versions are gone;
retrieval reads only ready versions, so it never sees half a document.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Any

import asyncpg

from coachops_crds.models import ModelSpec
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.chunking import Chunk, chunk
from coachops_runtime.knowledge.embedding import Embedder, EmbeddingError
from coachops_runtime.knowledge.parsing import ParseError, parse
from coachops_runtime.knowledge.repository import IngestRepository, version
from coachops_runtime.knowledge.vectors import Collection, Metadata, VectorStore, VectorStoreError

log = logging.getLogger("coachops.worker.knowledge")
DEFAULT_EMBEDDING_MODEL = ModelSpec().embedding
WAIT_SECONDS = 30.0  # longest wait between tries while a model or database is missing


def chunk_id(program_id: uuid.UUID, document_id: uuid.UUID, sha256: str, piece: Chunk) -> str:
    text = hashlib.sha256(piece.text.encode()).hexdigest()
    key = f"{program_id}/{document_id}/{sha256}/{piece.index}/{piece.start}/{piece.end}/{text}"
    return hashlib.sha256(key.encode()).hexdigest()


def metadata(row: Any, piece: Chunk) -> Metadata:
    found: dict[str, str | int] = {
        "document_id": str(row["document_id"]),
        "version": version(row["document_id"], row["sha256"]),
        "source": row["name"],
        "origin": row["origin"],
        "section": piece.section,
        "start": piece.start,
        "end": piece.end,
        "index": piece.index,
    }
    if piece.page is not None:
        found["page"] = piece.page
    return found


class KnowledgePoller:
    name = "knowledge"

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.embedder = embedder or Embedder(
            settings.ollama_url,
            timeout=settings.knowledge_timeout_seconds,
            batch=settings.knowledge_embed_batch,
            registry=settings.model_registry,
        )
        self.store = store or VectorStore(
            settings.chroma_url, timeout=settings.knowledge_timeout_seconds
        )

    async def close(self) -> None:
        await self.embedder.close()
        await self.store.close()

    async def poll(self) -> int:
        """Ingest due documents, up to ``knowledge_concurrency`` at once; returns how many.

        One lane claims first, so an idle poll costs one claim; once it holds a document
        the other lanes start beside it (a document can take minutes).
        """
        claimed = asyncio.Event()
        first = asyncio.ensure_future(self.ingest_one(claimed))
        signal = asyncio.ensure_future(claimed.wait())
        try:
            await asyncio.wait({first, signal}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            signal.cancel()
        if not claimed.is_set():
            return int(await first)
        lanes = [self.ingest_one() for _ in range(self.settings.knowledge_concurrency - 1)]
        outcomes = await asyncio.gather(first, *lanes, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(1 for outcome in outcomes if outcome)

    async def ingest_one(self, claimed: asyncio.Event | None = None) -> bool:
        """Claim one due document and handle it; False when none is due. ``claimed`` is
        set once a document is held."""
        async with self.pool.acquire() as connection, connection.transaction():
            repo = IngestRepository(connection)
            found = await repo.claim()
            if found is None:
                return False
            if claimed is not None:
                claimed.set()
            creator_id, document_id = found
            await repo.bind_tenant(creator_id)
            row = await repo.work(document_id)
            if row is None:  # deleted (or its program) since it was listed as due
                await repo.forget_due(document_id)
            else:
                await self._handle(repo, creator_id, row)
            return True

    async def _handle(self, repo: IngestRepository, creator_id: uuid.UUID, row: Any) -> None:
        fields = {"document_id": str(row["document_id"]), "program_id": str(row["program_id"])}
        collection = self.store.collection(row["creator_name"], row["program_id"])
        attempts = row["attempts"] + 1
        try:
            if row["state"] == "deleting":
                await self._remove_chunks(collection, row["document_id"], keep=set())
                await repo.forget(row["document_id"])
                log.info("knowledge document removed", extra=fields)
                return
            count = await self._ingest(creator_id, collection, row)
        except ParseError as error:
            await self._remove_chunks(collection, row["document_id"], keep=set())
            await repo.failed(row["document_id"], row["sha256"], str(error))
            log.warning("knowledge document failed", extra={**fields, "error": str(error)})
            return
        except (EmbeddingError, VectorStoreError) as error:
            reason = error.reason
            waiting = isinstance(error, EmbeddingError) and error.missing_model
            waiting = waiting or (isinstance(error, VectorStoreError) and error.missing)
            if row["state"] == "deleting":
                await repo.retry_delete(row["document_id"], self._backoff(attempts))
            elif waiting:
                # The model may still be pulling, the Chroma database still being made.
                delay = min(self._backoff(attempts), WAIT_SECONDS)
                await repo.wait(row["document_id"], row["sha256"], f"waiting: {reason}", delay)
                log.info("knowledge document waits", extra={**fields, "error": reason})
            elif attempts >= self.settings.knowledge_max_attempts:
                await repo.failed(row["document_id"], row["sha256"], f"gave up: {reason}")
                log.error("knowledge document given up", extra={**fields, "error": reason})
            else:
                delay = self._backoff(attempts)
                await repo.retry(row["document_id"], row["sha256"], f"retrying: {reason}", delay)
                log.warning(
                    "knowledge document not ingested, will retry",
                    extra={**fields, "error": reason, "retry_in_seconds": delay},
                )
            return
        if await repo.ready(row["document_id"], row["sha256"], count):
            log.info("knowledge document ready", extra={**fields, "chunks": count})

    def _backoff(self, attempts: int) -> float:
        return float(self.settings.knowledge_retry_base_seconds * 2 ** min(attempts - 1, 10))

    async def _ingest(self, creator_id: uuid.UUID, collection: Collection, row: Any) -> int:
        sections = await asyncio.to_thread(parse, row["content_type"], bytes(row["content"]))
        pieces = await asyncio.to_thread(
            chunk,
            sections,
            words=self.settings.knowledge_chunk_words,
            overlap=self.settings.knowledge_chunk_overlap,
        )
        model = row["model"] or DEFAULT_EMBEDDING_MODEL
        ids = [chunk_id(row["program_id"], row["document_id"], row["sha256"], p) for p in pieces]
        batch = self.settings.knowledge_embed_batch
        stored: asyncio.Future[None] | None = None
        try:
            # Embedding batch n+1 overlaps storing batch n: Ollama is the slow half.
            for first in range(0, len(pieces), batch):
                part = pieces[first : first + batch]
                vectors = await self.embedder.embed_batch(model, [p.text for p in part])
                if stored is not None:
                    await stored
                share = (first + len(part)) / len(pieces)
                stored = asyncio.ensure_future(
                    self._store(
                        creator_id,
                        collection,
                        row,
                        ids[first : first + batch],
                        part,
                        vectors,
                        share,
                    )
                )
            if stored is not None:
                await stored
        except BaseException:
            if stored is not None and not stored.done():
                stored.cancel()
                await asyncio.gather(stored, return_exceptions=True)
            raise
        await self._remove_chunks(collection, row["document_id"], keep=set(ids))
        return len(pieces)

    async def _store(
        self,
        creator_id: uuid.UUID,
        collection: Collection,
        row: Any,
        ids: list[str],
        part: list[Chunk],
        vectors: list[list[float]],
        share: float,
    ) -> None:
        await collection.upsert(
            ids, vectors, [p.text for p in part], [metadata(row, p) for p in part]
        )
        async with self.pool.acquire() as connection, connection.transaction():
            progress = IngestRepository(connection)
            await progress.bind_tenant(creator_id)
            await progress.progress(row["document_id"], row["sha256"], min(share, 0.99))

    async def _remove_chunks(
        self, collection: Collection, document_id: uuid.UUID, *, keep: set[str]
    ) -> None:
        """Delete the document's chunks except ``keep`` (earlier versions, or all)."""
        existing = await collection.ids({"document_id": str(document_id)})
        await collection.delete([i for i in existing if i not in keep])
