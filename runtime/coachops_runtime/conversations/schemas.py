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
    ai_unavailable_since: datetime | None = Field(
        description="Set while the AI provider is unavailable: the end user got the "
        "program's fallback text and the AI reply is being retried."
    )
    created_at: datetime
    last_message_at: datetime


class Citation(BaseModel):
    number: int = Field(description="The source's number [n] in the prompt.")
    source: str = Field(description="The knowledge document's name.")
    page: int | None
    section: str
    chunk_id: str
    snippet: str
    distance: float = Field(description="Cosine distance to the message.")


class MessagePublic(BaseModel):
    message_id: int
    conversation_id: uuid.UUID
    direction: Literal["in", "out"]
    author: Literal["end_user", "ai", "creator", "system"]
    kind: Literal["chat", "check_in", "nudge"]
    body: str
    created_at: datetime
    reply_to: int | None = Field(
        None, description="The inbound message this AI reply (or fallback notice) answers."
    )
    citations: list[Citation] | None = Field(
        None, description="Knowledge passages given to the model for this AI reply."
    )


class CreatorReplyCreate(BaseModel):
    body: Text = Field(min_length=1, max_length=10_000)


class EndUserMessageCreate(BaseModel):
    body: Text = Field(min_length=1, max_length=10_000)
    channel: Channel = "web"


class EndUserMessageAccepted(BaseModel):
    message: MessagePublic
    reply: Literal["queued", "human"] = Field(
        description="queued: the AI coach's reply is being generated; human: a human has "
        "taken over."
    )
    reply_stream: str | None = Field(
        None,
        description="Where the AI reply streams as Server-Sent Events (null when a human "
        "has taken over).",
    )


class EndUserMe(BaseModel):
    end_user_id: uuid.UUID
    program_id: uuid.UUID
    display_name: str
    time_zone: str | None = Field(
        description="IANA time zone; null when not set (the program's "
        "spec.proactive.timeZone applies, else UTC)."
    )
