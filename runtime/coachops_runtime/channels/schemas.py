"""Channel deliveries as the creator API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

DeliveryState = Literal["pending", "sent", "dead", "suppressed"]


class DeliveryPublic(BaseModel):
    delivery_id: int
    program_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: int | None = Field(description="the message delivered; null for a keyword answer")
    channel: str
    purpose: Literal["message", "compliance"]
    state: DeliveryState = Field(
        description="pending (queued or retrying), sent, dead (given up; can be retried) or "
        "suppressed (the end user opted out, or no address is known)"
    )
    attempts: int
    parts_sent: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    provider_status: Literal["sent", "delivered", "read", "failed"] | None = Field(
        None,
        description="what the provider last reported (Twilio status callbacks, WhatsApp "
        "statuses): failed if any part failed, else the least advanced part; null until a "
        "report arrives, and always for channels without delivery reports",
    )
    provider_status_at: datetime | None = None
    provider_error: str | None = Field(None, description="the provider's error code and title")
