"""Knowledge sources of a program: spec documents written to PostgreSQL, KnowledgeReady read back.

``spec.knowledge`` lists inline texts and ConfigMaps in the program's namespace. Each
inline text is one plain-text document named after its source; each key of a referenced
ConfigMap is one document named ``<source name>/<key>``, its type from the key's
extension (``.md`` Markdown, ``.html``/``.htm`` HTML, ``.pdf`` and ``.docx`` from
``binaryData``, anything else plain text). Documents are upserted by sha256, so an
unchanged source writes nothing; a source no longer listed, or a key gone from its
ConfigMap, is marked for deletion. A ConfigMap that cannot be read keeps its documents.

The runtime's worker ingests the rows (parse, chunk, embed, store in Chroma); here the
counts by state become the ``KnowledgeReady`` condition, every time the program is
evaluated (the re-check sweep, program_sweep.py, picks up a ConfigMap edit).
A program deleted under reclaimPolicy Delete loses its Chroma collection (``forget``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import asyncpg

from coachops_crds import constants as c
from coachops_crds.models import CoachingProgramSpec
from coachops_operator import conditions as cond
from coachops_operator import kube
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.stores import Stores

TEXT = "text/plain"
_BY_EXTENSION: Mapping[str, str] = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_MESSAGE_LIMIT = 900  # conditions stay readable in kubectl describe


@dataclass(frozen=True)
class Document:
    name: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Sources:
    """What the spec asks for now; ``unread`` ConfigMaps keep the documents they had."""

    documents: list[Document]
    unread: dict[str, str]  # source name -> why its ConfigMap could not be read


def _content_type(key: str) -> str:
    return _BY_EXTENSION.get(PurePosixPath(key).suffix.lower(), TEXT)


async def read_sources(stores: Stores, namespace: str, spec: CoachingProgramSpec) -> Sources:
    documents: list[Document] = []
    unread: dict[str, str] = {}
    for source in spec.knowledge:
        if source.text is not None:
            documents.append(Document(source.name, TEXT, source.text.encode()))
            continue
        ref = source.config_map_ref or ""
        try:
            found = await kube.get(stores.api, "v1", "ConfigMap", namespace, ref)
        except kube.KubeError as error:
            unread[source.name] = f"ConfigMap {ref}: {describe(error)}"
            continue
        if found is None:
            unread[source.name] = f"ConfigMap {ref} not found"
            continue
        for key, value in sorted((found.get("data") or {}).items()):
            documents.append(Document(f"{source.name}/{key}", _content_type(key), value.encode()))
        for key, value in sorted((found.get("binaryData") or {}).items()):
            try:
                content = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                unread[source.name] = f"ConfigMap {ref}: binaryData {key} is not base64"
                continue
            documents.append(Document(f"{source.name}/{key}", _content_type(key), content))
    return Sources(documents, unread)


# ---------------------------------------------------------------- rows

_SPEC_ROWS = """
SELECT name, sha256, content_type FROM knowledge_documents
WHERE program_id = $1 AND origin = 'spec' AND state <> 'deleting'
"""
_INSERT = """
INSERT INTO knowledge_documents
    (creator_id, program_id, name, origin, content_type, content, size_bytes, sha256)
VALUES ($1, $2, $3, 'spec', $4, $5, $6, $7)
ON CONFLICT (creator_id, program_id, origin, name) WHERE state <> 'deleting' DO UPDATE SET
    content_type = EXCLUDED.content_type, content = EXCLUDED.content,
    size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, state = 'pending',
    progress = 0, error = NULL, attempts = 0, updated_at = now()
"""
# Unlisted spec documents marked for deletion and the states of the rest, in one round
# trip (the SELECT sees the rows as before the UPDATE, so it leaves out what it marked).
_FORGET_AND_COUNT = """
WITH gone AS (
    UPDATE knowledge_documents SET state = 'deleting', updated_at = now()
    WHERE program_id = $1 AND origin = 'spec' AND state <> 'deleting'
      AND NOT (name = ANY($2::text[]))
    RETURNING document_id
)
SELECT state, name, progress, chunk_count, error FROM knowledge_documents
WHERE program_id = $1 AND state <> 'deleting'
  AND document_id NOT IN (SELECT document_id FROM gone)
ORDER BY name
"""


async def _write(
    conn: Any, tenant: uuid.UUID, program: uuid.UUID, sources: Sources, keep: list[str]
) -> list[Any]:
    """Upsert changed documents, mark the unlisted ones for deletion; the states left."""
    current: dict[str, tuple[str, str]] = {}
    if sources.documents:
        rows = await conn.fetch(_SPEC_ROWS, program)
        current = {r["name"]: (r["sha256"], r["content_type"]) for r in rows}
    for document in sources.documents:
        if current.get(document.name) == (document.sha256, document.content_type):
            continue
        await conn.execute(
            _INSERT,
            tenant,
            program,
            document.name,
            document.content_type,
            document.content,
            len(document.content),
            document.sha256,
        )
    return list(await conn.fetch(_FORGET_AND_COUNT, program, keep))


# ---------------------------------------------------------------- KnowledgeReady


def _observation(
    rows: list[Any], unread: Mapping[str, str], listed: int
) -> tuple[Observation, int]:
    chunks = sum(int(r["chunk_count"]) for r in rows if r["state"] == "ready")
    total = len(rows)
    ready = sum(1 for r in rows if r["state"] == "ready")
    failed = [r for r in rows if r["state"] == "failed"]
    busy = [r for r in rows if r["state"] in ("pending", "ingesting")]
    counts = f"{ready}/{total} documents ready, {chunks} chunks"
    if unread:
        problems = "; ".join(unread.values())
        return _false("SourceUnavailable", f"{problems} ({counts})"), chunks
    if failed:
        named = "; ".join(f"{r['name']}: {r['error'] or 'failed'}" for r in failed)
        return _false("IngestionFailed", f"{len(failed)} failed: {named} ({counts})"), chunks
    if busy:
        named = ", ".join(
            f"{r['name']} {round(float(r['progress']) * 100)}%"
            if r["state"] == "ingesting"
            else f"{r['name']} pending"
            for r in busy
        )
        return _false("Ingesting", f"{counts}; {named}"), chunks
    if total == 0 and listed == 0:
        return Observation.true(cond.KNOWLEDGE_READY, "NoKnowledge", "no knowledge documents"), 0
    return Observation.true(cond.KNOWLEDGE_READY, "Ingested", counts), chunks


def _false(reason: str, message: str) -> Observation:
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "…"
    return Observation.false(cond.KNOWLEDGE_READY, reason, message)


def _unknown(reason: str, message: str) -> tuple[Observation, int]:
    return Observation(cond.KNOWLEDGE_READY, "Unknown", reason, message), 0


async def observe(
    stores: Stores,
    namespace: str,
    program: uuid.UUID,
    spec: CoachingProgramSpec | None,
    creator_name: str | None,
) -> tuple[Observation, int]:
    """Write the spec's documents, then KnowledgeReady and the chunk count of ready ones."""
    if spec is None:
        return _unknown("InvalidSpec", "the spec does not validate")
    if creator_name is None:
        return _unknown("Pending", "waiting for the Creator")
    sources = await read_sources(stores, namespace, spec)
    keep = [d.name for d in sources.documents]
    # A ConfigMap that cannot be read now keeps the documents it had.
    keep_prefixes = tuple(f"{name}/" for name in sources.unread)
    tenant = c.tenant_id(creator_name)
    try:
        async with stores.db.transaction(tenant) as conn:
            if keep_prefixes:
                kept = await conn.fetch(_SPEC_ROWS, program)
                keep += [r["name"] for r in kept if r["name"].startswith(keep_prefixes)]
            rows = await _write(conn, tenant, program, sources, keep)
    except asyncpg.ForeignKeyViolationError:
        return _unknown("Pending", "waiting for the database copy of the program")
    except PG_ERRORS as error:
        return _unknown("DatabaseUnavailable", describe(error))
    return _observation(rows, sources.unread, len(spec.knowledge))


async def forget(stores: Stores, creator_name: str, program: uuid.UUID) -> None:
    """Delete the program's Chroma collection (its rows went with the program's row).
    Store errors propagate."""
    await stores.vectors.delete_collection(
        c.chroma_tenant(creator_name), c.CHROMA_DATABASE, c.chroma_collection(program)
    )
