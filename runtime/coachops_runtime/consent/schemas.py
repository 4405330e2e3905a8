"""Consent changes as the creator and the end user read them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from coachops_runtime.endusers.schemas import Channel

ConsentSource = Literal["keyword_stop", "keyword_start", "creator", "end_user", "recorded"]


class ConsentEventPublic(BaseModel):
    event_id: int
    end_user_id: uuid.UUID
    channel: Channel
    granted: bool = Field(description="The consent on this channel after the change.")
    address: str = Field(description="The handle on that channel the change was made for.")
    source: ConsentSource = Field(
        description="keyword_stop / keyword_start: the end user sent an opt-out or opt-in "
        "word (SMS, WhatsApp); creator: an account or API key of the creator set it; "
        "end_user: the end user set it; recorded: the state found when the history began."
    )
    actor_id: uuid.UUID | None = Field(
        description="The creator's account or API key id for source creator; null otherwise."
    )
    request_id: str = Field(description="The request that made the change, as in the logs.")
    created_at: datetime
