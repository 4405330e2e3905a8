"""Knowledge documents of a program: upload, list, read, delete. The worker ingests them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import ProgramsRead, ProgramsWrite
from coachops_runtime.auth.schemas import Accepted
from coachops_runtime.container import RuntimeDep
from coachops_runtime.kit.errors import problems
from coachops_runtime.kit.pagination import CursorQuery
from coachops_runtime.knowledge import service
from coachops_runtime.knowledge.schemas import DocumentName, DocumentPage, DocumentPublic
from coachops_runtime.programs.endpoints import NamePath

router = APIRouter(prefix="/v1/programs/{name}/knowledge", tags=["knowledge"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentPublic,
    responses={
        200: {"description": "A document of that name existed: replaced, or unchanged"},
        **problems(401, 403, 404, 409, 413, 415, 429),
    },
)
async def upload_document(
    name: NamePath,
    context: ProgramsWrite,
    runtime: RuntimeDep,
    response: Response,
    file: Annotated[UploadFile, File(description="Text, Markdown, HTML, PDF or DOCX.")],
    document_name: Annotated[
        DocumentName | None, Form(description="Defaults to the file's name.")
    ] = None,
) -> DocumentPublic:
    """Upload a document; it is ingested in the background (poll its ``state``). The same
    name again replaces the content; the same bytes again change nothing."""
    limit = runtime.settings.knowledge_max_bytes
    # Read one byte past the limit: enough to know it is too large.
    content = await file.read(limit + 1)
    document, created = await service.upload(
        context, name, document_name or file.filename or "", file.content_type, content, limit
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    await audit.record(
        context, "knowledge.upload", "document", document.document_id, {"program": name}
    )
    return document


@router.get("", response_model=DocumentPage, responses=problems(400, 401, 403, 404, 429))
async def list_documents(
    name: NamePath,
    context: ProgramsRead,
    cursor: CursorQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DocumentPage:
    """The program's documents, oldest first, with their ingestion state."""
    return await service.page(context, name, cursor, limit)


@router.get("/{document_id}", response_model=DocumentPublic, responses=problems(401, 403, 404, 429))
async def get_document(
    name: NamePath, document_id: uuid.UUID, context: ProgramsRead
) -> DocumentPublic:
    """One document and its ingestion state."""
    return await service.get(context, name, document_id)


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=problems(401, 403, 404, 409, 429),
)
async def delete_document(
    name: NamePath, document_id: uuid.UUID, context: ProgramsWrite
) -> Accepted:
    """Delete an uploaded document: it leaves the list at once, its chunks leave the
    program's collection when the worker gets to it."""
    await service.delete(context, name, document_id)
    await audit.record(context, "knowledge.delete", "document", document_id, {"program": name})
    return Accepted(detail="deleted; the worker removes its chunks from the collection")
