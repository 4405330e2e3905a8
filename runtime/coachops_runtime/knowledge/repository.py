"""SQL of knowledge documents, under the tenant bound to the session (RLS)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from coachops_runtime.kit.db import Session, bind_tenant

_COLUMNS = (
    "document_id, name, origin, content_type, size_bytes, sha256, state, progress,"
    " chunk_count, error, created_at, updated_at, ingested_at"
)
_PROGRAM = "SELECT program_id FROM programs WHERE name = $1 AND deleted_at IS NULL"
# An upload of a name the program already has replaces its content; the same bytes again
# change nothing (xmax = 0 tells an insert from an update).
_UPSERT = f"""
INSERT INTO knowledge_documents
    (creator_id, program_id, name, origin, content_type, content, size_bytes, sha256)
VALUES ($1, $2, $3, 'upload', $4, $5, $6, $7)
ON CONFLICT (creator_id, program_id, origin, name) WHERE state <> 'deleting' DO UPDATE SET
    content_type = EXCLUDED.content_type, content = EXCLUDED.content,
    size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, state = 'pending',
    progress = 0, error = NULL, attempts = 0, updated_at = now()
WHERE knowledge_documents.sha256 IS DISTINCT FROM EXCLUDED.sha256
   OR knowledge_documents.content_type IS DISTINCT FROM EXCLUDED.content_type
RETURNING {_COLUMNS}, (xmax = 0) AS created
"""
_BY_NAME = (
    f"SELECT {_COLUMNS} FROM knowledge_documents"
    " WHERE program_id = $1 AND origin = 'upload' AND name = $2 AND state <> 'deleting'"
)
_ONE = (
    f"SELECT {_COLUMNS} FROM knowledge_documents"
    " WHERE program_id = $1 AND document_id = $2 AND state <> 'deleting'"
)
_PAGE = f"""
SELECT {_COLUMNS} FROM knowledge_documents
WHERE program_id = $1 AND state <> 'deleting'
  AND ($2::timestamptz IS NULL OR (created_at, document_id) > ($2, $3::uuid))
ORDER BY created_at, document_id LIMIT $4
"""
# The row stays until the worker has deleted its vectors.
_DELETE = (
    "UPDATE knowledge_documents SET state = 'deleting', updated_at = now()"
    " WHERE program_id = $1 AND document_id = $2 AND state <> 'deleting'"
)


class KnowledgeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def program_id(self, name: str) -> uuid.UUID | None:
        found = await self.session.scalar(_PROGRAM, name)
        return None if found is None else uuid.UUID(str(found))

    async def upsert_upload(
        self,
        creator_id: uuid.UUID,
        program_id: uuid.UUID,
        name: str,
        content_type: str,
        content: bytes,
        sha256: str,
    ) -> Any | None:
        """The new or replaced row (with ``created``), or None when nothing changed."""
        return await self.session.one_or_none(
            _UPSERT, creator_id, program_id, name, content_type, content, len(content), sha256
        )

    async def by_name(self, program_id: uuid.UUID, name: str) -> Any | None:
        return await self.session.one_or_none(_BY_NAME, program_id, name)

    async def one(self, program_id: uuid.UUID, document_id: uuid.UUID) -> Any | None:
        return await self.session.one_or_none(_ONE, program_id, document_id)

    async def page(
        self, program_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Any]:
        at, key = after if after is not None else (None, None)
        return await self.session.all(_PAGE, program_id, at, key, limit)

    async def mark_deleted(self, program_id: uuid.UUID, document_id: uuid.UUID) -> bool:
        return await self.session.execute(_DELETE, program_id, document_id) == "UPDATE 1"


# ---------------------------------------------------------------- retrieval

_RETRIEVAL_TARGET = """
SELECT c.name AS creator_name, p.spec -> 'model' ->> 'embedding' AS model
FROM programs p JOIN creators c ON c.creator_id = p.creator_id
WHERE p.program_id = $1 AND p.deleted_at IS NULL
"""
_READY_VERSIONS = (
    "SELECT document_id, sha256 FROM knowledge_documents WHERE program_id = $1 AND state = 'ready'"
)


class RetrievalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def target(self, program_id: uuid.UUID) -> Any | None:
        """The program's creator name and embedding model, in the bound tenant only."""
        return await self.session.one_or_none(_RETRIEVAL_TARGET, program_id)

    async def ready_versions(self, program_id: uuid.UUID) -> list[str]:
        rows = await self.session.all(_READY_VERSIONS, program_id)
        return [version(row["document_id"], row["sha256"]) for row in rows]


def version(document_id: uuid.UUID, sha256: str) -> str:
    """What each chunk records of the document content it came from."""
    return f"{document_id}:{sha256}"


# ---------------------------------------------------------------- the worker

# SECURITY DEFINER (migration 0005): the earliest due (creator_id, document_id), locked
# with FOR UPDATE SKIP LOCKED until the claiming transaction ends.
_CLAIM = "SELECT creator_id, document_id FROM claim_due_knowledge()"
# SECURITY DEFINER too: the queue entry of a document deleted while this worker held it.
_FORGET_DUE = "SELECT forget_due_knowledge($1)"
_WORK = """
SELECT d.document_id, d.program_id, d.name, d.origin, d.content_type, d.content, d.sha256,
       d.state, d.attempts, c.name AS creator_name,
       p.spec -> 'model' ->> 'embedding' AS model
FROM knowledge_documents d
JOIN programs p ON p.program_id = d.program_id
JOIN creators c ON c.creator_id = d.creator_id
WHERE d.document_id = $1
"""
# Progress goes through its own short transactions (never touching the due entry); the
# outcome below goes through the claiming one. Both only apply to the version worked on.
_PROGRESS = """
UPDATE knowledge_documents SET state = 'ingesting', progress = $3, updated_at = now()
WHERE document_id = $1 AND sha256 = $2 AND state IN ('pending', 'ingesting')
"""
_READY = """
UPDATE knowledge_documents SET state = 'ready', progress = 1, chunk_count = $3, error = NULL,
    attempts = 0, ingested_at = now(), updated_at = now()
WHERE document_id = $1 AND sha256 = $2 AND state IN ('pending', 'ingesting')
"""
_FAILED = """
UPDATE knowledge_documents SET state = 'failed', progress = 0, chunk_count = 0, error = $3,
    attempts = attempts + 1, updated_at = now()
WHERE document_id = $1 AND sha256 = $2 AND state IN ('pending', 'ingesting')
"""
_RETRY = """
UPDATE knowledge_documents SET state = 'pending', error = $3, attempts = attempts + 1,
    next_attempt_at = now() + make_interval(secs => $4), updated_at = now()
WHERE document_id = $1 AND sha256 = $2 AND state IN ('pending', 'ingesting')
"""
# Waiting for something another component brings (the operator's model pull, the
# creator's Chroma database) is not a failed attempt.
_WAIT = """
UPDATE knowledge_documents SET state = 'pending', error = $3,
    next_attempt_at = now() + make_interval(secs => $4), updated_at = now()
WHERE document_id = $1 AND sha256 = $2 AND state IN ('pending', 'ingesting')
"""
_RETRY_DELETE = """
UPDATE knowledge_documents SET attempts = attempts + 1,
    next_attempt_at = now() + make_interval(secs => $2)
WHERE document_id = $1 AND state = 'deleting'
"""
_FORGET = "DELETE FROM knowledge_documents WHERE document_id = $1 AND state = 'deleting'"


class IngestRepository:
    """The worker's statements on one connection (claiming, or progress)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def claim(self) -> tuple[uuid.UUID, uuid.UUID] | None:
        row = await self.connection.fetchrow(_CLAIM)
        return None if row is None else (row["creator_id"], row["document_id"])

    async def bind_tenant(self, creator_id: uuid.UUID) -> None:
        await bind_tenant(self.connection, creator_id)

    async def forget_due(self, document_id: uuid.UUID) -> None:
        await self.connection.execute(_FORGET_DUE, document_id)

    async def work(self, document_id: uuid.UUID) -> Any | None:
        return await self.connection.fetchrow(_WORK, document_id)

    async def progress(self, document_id: uuid.UUID, sha256: str, share: float) -> None:
        await self.connection.execute(_PROGRESS, document_id, sha256, share)

    async def ready(self, document_id: uuid.UUID, sha256: str, chunks: int) -> bool:
        return str(await self.connection.execute(_READY, document_id, sha256, chunks)).endswith(
            " 1"
        )

    async def failed(self, document_id: uuid.UUID, sha256: str, reason: str) -> None:
        await self.connection.execute(_FAILED, document_id, sha256, reason[:1000])

    async def retry(self, document_id: uuid.UUID, sha256: str, reason: str, delay: float) -> None:
        await self.connection.execute(_RETRY, document_id, sha256, reason[:1000], delay)

    async def wait(self, document_id: uuid.UUID, sha256: str, reason: str, delay: float) -> None:
        await self.connection.execute(_WAIT, document_id, sha256, reason[:1000], delay)

    async def retry_delete(self, document_id: uuid.UUID, delay: float) -> None:
        await self.connection.execute(_RETRY_DELETE, document_id, delay)

    async def forget(self, document_id: uuid.UUID) -> None:
        await self.connection.execute(_FORGET, document_id)
