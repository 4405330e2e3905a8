"""The audit log as the creator reads it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ActorKind = Literal["account", "api_key", "system"]


class AuditEntryPublic(BaseModel):
    audit_id: int
    actor_kind: ActorKind = Field(
        description="Who acted: a signed-in account, an API key, or the platform itself."
    )
    actor_id: uuid.UUID | None = Field(description="The account's or API key's id.")
    action: str = Field(examples=["program.update"], description="What was done.")
    target_kind: str = Field(examples=["program"], description="The kind of object acted on.")
    target_id: str = Field(description="The object's id or name; never personal data.")
    details: dict[str, Any] = Field(
        description="Ids and settings of the change (field names changed, counts); never "
        "names, e-mail addresses or message text."
    )
    request_id: str = Field(description="The request's id, as in the logs and X-Request-ID.")
    created_at: datetime
