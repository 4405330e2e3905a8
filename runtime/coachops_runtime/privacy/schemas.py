"""Exports and erasures as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ExportFormat = Literal["json", "zip"]


class ExportPublic(BaseModel):
    """An export job: poll ``status_url`` until ``state`` is ``ready``, then fetch
    ``download_url`` once."""

    export_id: uuid.UUID
    end_user_id: uuid.UUID
    format: ExportFormat
    state: Literal["pending", "running", "ready", "downloaded", "expired", "failed"] = Field(
        description="pending (queued), running (see progress), ready (download_url works), "
        "downloaded (the archive is gone), expired, failed (see error)."
    )
    progress: float = Field(description="Share of the rows read, 0-1.")
    item_count: int = Field(description="Rows and vectors in the archive (counted so far).")
    size_bytes: int | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = Field(None, description="When a ready archive is dropped.")
    status_url: str
    download_url: str | None = Field(
        None,
        description="Set while ready: a single-use link (a path on this API), valid until "
        "download_expires_at, that needs no Authorization header. Each status read makes a "
        "new one and ends the previous one.",
    )
    download_expires_at: datetime | None = None


class ErasureStep(BaseModel):
    removed: int = Field(description="Rows, keys or vectors this step removed.")
    done: bool


class ErasurePublic(BaseModel):
    """An erasure: ``pending`` until the worker starts, ``running`` with its steps (and
    ``error`` while a store is unreachable: it is retried until it ends), ``done`` once
    every store is clean (only the tombstone is left)."""

    erasure_id: uuid.UUID
    state: Literal["pending", "running", "done"]
    steps: dict[str, ErasureStep] = Field(default_factory=dict)
    requested_by: str | None = Field(
        None, description="account:<id>, api_key:<id> or end_user (in a finished erasure)."
    )
    request_id: str | None = None
    error: str | None = None
    requested_at: datetime
    completed_at: datetime | None = None
    status_url: str | None = None


class ErasureConfirmation(BaseModel):
    """Pass ``confirmation`` to ``DELETE /v1/me`` before ``expires_at``."""

    confirmation: str
    expires_at: datetime
