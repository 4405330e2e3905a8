"""Knowledge uploads, lists and deletions of a program in the caller's tenant.

Only the row is written here; the worker ingests it (``ingest``). Spec documents belong
to the CoachingProgram: the operator writes them and the API does not delete them.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.kit.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from coachops_runtime.kit.pagination import decode_keyset, encode_keyset
from coachops_runtime.kit.text import refuse_unstorable
from coachops_runtime.knowledge import formats
from coachops_runtime.knowledge.repository import KnowledgeRepository
from coachops_runtime.knowledge.schemas import DocumentPage, DocumentPublic


async def _program(repo: KnowledgeRepository, name: str) -> uuid.UUID:
    program = await repo.program_id(name)
    if program is None:
        raise NotFound("no such program")
    return program


def _public(row: Any) -> DocumentPublic:
    return DocumentPublic.model_validate(dict(row))


def check_upload(name: str, declared: str | None, content: bytes, limit: int) -> str:
    """The upload's content type; 413, 415 or 422 problems for what cannot be ingested."""
    if len(content) > limit:
        raise PayloadTooLarge(
            f"the document has {len(content)} bytes; at most {limit} are accepted"
        )
    try:
        refuse_unstorable(name)
    except ValueError as error:
        raise ValidationFailed(f"file name {error}") from error
    if not name.strip() or len(name) > 255:
        raise ValidationFailed("the document needs a name of 1 to 255 characters")
    try:
        content_type = formats.detect(name, declared)
    except formats.UnsupportedFormatError as error:
        raise UnsupportedMediaType(str(error)) from error
    if not content:
        raise ValidationFailed("the document is empty")
    if not formats.looks_like(content_type, content):
        raise ValidationFailed(f"the content of {name} is not a {content_type} document")
    return content_type


async def upload(
    context: CreatorContext,
    program_name: str,
    name: str,
    declared: str | None,
    content: bytes,
    limit: int,
) -> tuple[DocumentPublic, bool]:
    """The document and whether it was created (False: replaced, or unchanged)."""
    content_type = check_upload(name, declared, content, limit)
    repo = KnowledgeRepository(context.session)
    program = await _program(repo, program_name)
    digest = hashlib.sha256(content).hexdigest()
    row = await repo.upsert_upload(context.creator_id, program, name, content_type, content, digest)
    if row is None:  # the same bytes again
        row = await repo.by_name(program, name)
        if row is None:  # deleted between the two statements
            raise Conflict("the document was deleted meanwhile; upload it again")
        return _public(row), False
    return _public(row), bool(row["created"])


async def page(
    context: CreatorContext, program_name: str, cursor: str | None, limit: int
) -> DocumentPage:
    repo = KnowledgeRepository(context.session)
    program = await _program(repo, program_name)
    rows = await repo.page(program, decode_keyset(cursor) if cursor else None, limit + 1)
    items = [_public(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_keyset(items[-1].created_at, items[-1].document_id)
    return DocumentPage(items=items, next_cursor=next_cursor)


async def get(context: CreatorContext, program_name: str, document_id: uuid.UUID) -> DocumentPublic:
    repo = KnowledgeRepository(context.session)
    row = await repo.one(await _program(repo, program_name), document_id)
    if row is None:
        raise NotFound("no such document")
    return _public(row)


async def delete(context: CreatorContext, program_name: str, document_id: uuid.UUID) -> None:
    repo = KnowledgeRepository(context.session)
    program = await _program(repo, program_name)
    row = await repo.one(program, document_id)
    if row is None:
        raise NotFound("no such document")
    if row["origin"] == "spec":
        raise Conflict(
            "this document comes from the program's spec.knowledge: remove it there instead"
        )
    await repo.mark_deleted(program, document_id)
