"""Conversations and messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from coachops_runtime.kit.text import Text

Channel = Literal["web", "telegram", "whatsapp", "sms", "email", "slack"]


class ConversationPublic(BaseModel):
    conversation_id: uuid.UUID
    program_id: uuid.UUID
    end_user_id: uuid.UUID
    channel: str
    ai_paused: bool = Field(description="True while a human has taken over.")
    paused_at: datetime | None
    created_at: datetime
    last_message_at: datetime


class MessagePublic(BaseModel):
    message_id: int
    conversation_id: uuid.UUID
    direction: Literal["in", "out"]
    author: Literal["end_user", "ai", "creator", "system"]
    kind: Literal["chat", "check_in", "nudge"]
    body: str
    created_at: datetime


class CreatorReplyCreate(BaseModel):
    body: Text = Field(min_length=1, max_length=10_000)


class EndUserMessageCreate(BaseModel):
    body: Text = Field(min_length=1, max_length=10_000)
    channel: Channel = "web"


class EndUserMessageAccepted(BaseModel):
    message: MessagePublic
    reply: Literal["queued", "human"] = Field(
        description="queued: left for the AI coach (planned: no AI reply is generated yet); "
        "human: a human has taken over."
    )


class EndUserMe(BaseModel):
    end_user_id: uuid.UUID
    program_id: uuid.UUID
    display_name: str
    time_zone: str
