"""Retrieval: the chunks of a program's knowledge nearest to a question.

Runs in a session bound to one tenant: the program, its creator's Chroma tenant and its
embedding model are read under RLS, so a program of another tenant is simply not found.
Only chunks of documents whose current version is ready are returned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from coachops_runtime.kit.db import Session
from coachops_runtime.knowledge.embedding import Embedder
from coachops_runtime.knowledge.ingest import DEFAULT_EMBEDDING_MODEL
from coachops_runtime.knowledge.repository import RetrievalRepository
from coachops_runtime.knowledge.vectors import VectorStore

# Cosine distance (0 same direction, 1 unrelated, 2 opposite).
DEFAULT_MAX_DISTANCE = 0.75


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    text: str
    source: str
    page: int | None
    section: str
    start: int
    end: int
    distance: float


async def retrieve(
    session: Session,
    store: VectorStore,
    embedder: Embedder,
    program_id: uuid.UUID,
    query: str,
    *,
    top_k: int = 5,
    max_distance: float = DEFAULT_MAX_DISTANCE,
) -> list[Passage]:
    """Up to ``top_k`` passages within ``max_distance`` of ``query``, nearest first."""
    repo = RetrievalRepository(session)
    target = await repo.target(program_id)
    if target is None:
        return []
    versions = await repo.ready_versions(program_id)
    if not versions or not query.strip():
        return []
    model = target["model"] or DEFAULT_EMBEDDING_MODEL
    (vector,) = await embedder.embed_batch(model, [query])
    collection = store.collection(target["creator_name"], program_id)
    hits = await collection.query(vector, top_k, {"version": {"$in": versions}})
    return [
        Passage(
            chunk_id=hit.id,
            text=hit.text,
            source=str(hit.metadata.get("source", "")),
            page=int(hit.metadata["page"]) if "page" in hit.metadata else None,
            section=str(hit.metadata.get("section", "")),
            start=int(hit.metadata.get("start", 0)),
            end=int(hit.metadata.get("end", 0)),
            distance=hit.distance,
        )
        for hit in hits
        if hit.distance <= max_distance
    ]
