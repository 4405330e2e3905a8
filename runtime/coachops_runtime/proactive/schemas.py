"""Creator API schemas: upcoming proactive messages and the decisions taken on them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["check_in", "nudge", "goal"]
Outcome = Literal["sent", "deferred", "skipped"]


class ScheduleOut(BaseModel):
    schedule_id: int
    program_id: uuid.UUID
    end_user_id: uuid.UUID
    kind: Kind
    item: str = Field(
        description="The check-in's name; empty for the inactivity nudge; the goal's id."
    )
    occurrence: datetime | None = Field(
        description="The next occurrence (UTC); null while the scheduler has yet to plan it "
        "(just enrolled or just changed) or when a nudge waits for a new silence."
    )
    local_time: str | None = Field(
        description="The occurrence on the end user's clock, ISO 8601 with its offset."
    )
    due_at: datetime | None = Field(
        description="When the scheduler acts on it: the occurrence, or the end of quiet hours "
        "when deferred; null while unplanned."
    )
    deferred: bool = Field(description="Deferred by quiet hours.")
    send_now: bool = Field(description="Asked to be sent now by the creator, not yet sent.")


class DecisionOut(BaseModel):
    decision_id: int
    program_id: uuid.UUID
    end_user_id: uuid.UUID
    schedule_id: int | None
    kind: Kind
    item: str
    occurrence: datetime | None
    occurrence_key: str = Field(
        description="The send's idempotency key with (end user, kind, item): a check-in's "
        "local date, a nudge's silence start, a goal follow-up's target date and stage."
    )
    outcome: Outcome
    reason: str = Field(
        description="sent: scheduled, sent_now. deferred: quiet_hours. skipped: "
        "max_per_day, no_consent, whatsapp_window, conversation_paused, paused (enrolment), "
        "unenrolled, tenant_suspended, stale (due too long ago), already_sent (this key was "
        "sent), creator_skipped."
    )
    channel: str | None
    message_id: int | None
    local_day: date = Field(description="The end user's local date when decided.")
    decided_at: datetime
