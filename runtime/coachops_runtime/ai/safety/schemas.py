"""Safety events as the creator API shows them (no message text is ever stored)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SafetyEventPublic(BaseModel):
    event_id: uuid.UUID
    program_id: uuid.UUID
    end_user_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: int | None = Field(description="The inbound message that was checked.")
    kind: Literal["crisis", "blocked_topic"]
    category: Literal["self_harm", "abuse", "medical_emergency"] | None
    topic: str | None = Field(description="The blocked topic the message named.")
    layer: Literal["pattern", "embedding"] = Field(description="The check that caught it.")
    score: float | None = Field(description="Similarity to the nearest crisis exemplar.")
    ai_paused: bool = Field(description="Whether the AI was paused in the conversation.")
    alert_queued: bool = Field(description="Whether an alert e-mail was queued.")
    created_at: datetime
