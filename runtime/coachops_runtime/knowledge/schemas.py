"""Knowledge documents as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from coachops_runtime.kit.text import Storable

DocumentState = Literal["pending", "ingesting", "ready", "failed"]
DocumentName = Annotated[str, Field(min_length=1, max_length=255), Storable]


class DocumentPublic(BaseModel):
    document_id: uuid.UUID
    name: str
    origin: Literal["spec", "upload"] = Field(
        description="spec: from the CoachingProgram's spec.knowledge; upload: through this API."
    )
    content_type: str
    size_bytes: int
    sha256: str
    state: DocumentState = Field(
        description=(
            "pending: waiting for the worker; ingesting: being parsed, embedded and stored "
            "(see progress); ready: every chunk is stored; failed: see error."
        )
    )
    progress: float = Field(description="Share of the document's chunks stored, 0-1.")
    chunk_count: int
    error: str | None = Field(None, description="Why ingestion failed (state failed).")
    created_at: datetime
    updated_at: datetime
    ingested_at: datetime | None = None


class DocumentPage(BaseModel):
    items: list[DocumentPublic]
    next_cursor: str | None = Field(
        None, description="Pass as ``cursor`` for the next page; null on the last page."
    )
