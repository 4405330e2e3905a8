"""Usage and engagement per program per day (UTC)."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field


class ProgramDay(BaseModel):
    program_id: uuid.UUID
    day: date
    messages_in: int
    messages_out: int
    active_users: int = Field(description="End users who sent at least one message.")
    check_ins_sent: int
    check_ins_answered: int = Field(description="Check-ins answered within 24 hours.")
    check_in_response_rate: float | None = Field(
        description="check_ins_answered / check_ins_sent; null when none were sent."
    )
    ai_replies: int = Field(description="Replies the AI coach generated.")
    prompt_tokens: int = Field(description="Prompt tokens of those replies.")
    completion_tokens: int = Field(description="Completion tokens of those replies.")
