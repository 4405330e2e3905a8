"""Schemas of the AI endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from coachops_runtime.kit.text import Text


class MemoryPublic(BaseModel):
    conversation_id: uuid.UUID
    summary: str = Field(description="Rolling summary of the turns before the last few.")
    through_message_id: int = Field(description="Last message the summary covers (0: none).")
    updated_at: datetime | None


class ProgramUsage(BaseModel):
    program: str
    month: str = Field(description="YYYY-MM (UTC).")
    replies: int = Field(description="AI replies generated.")
    prompt_tokens: int
    completion_tokens: int


class UsageReport(BaseModel):
    items: list[ProgramUsage] = Field(description="Per program and month, newest month first.")


class PreviewRequest(BaseModel):
    message: Text = Field(min_length=1, max_length=10_000)
