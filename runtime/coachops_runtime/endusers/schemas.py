"""End users of the creator's programs: profiles, enrolments and per-channel consent."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from coachops_runtime.kit.text import Storable, Text

Channel = Literal["web", "telegram", "whatsapp", "sms", "email", "slack"]


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError("unknown IANA time zone") from error
    return value


TimeZone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-/]*$",
        examples=["Europe/Berlin"],
    ),
    Storable,
    AfterValidator(_time_zone),
]
Email = Annotated[
    str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), Storable
]
Locale = Annotated[
    str, Field(min_length=2, max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"), Storable
]
DisplayName = Annotated[str, Field(max_length=200), Storable]
ExternalId = Annotated[str, Field(min_length=1, max_length=200), Storable]


class EndUserCreate(BaseModel):
    """Invite an end user; enrol them in programs at once if you like."""

    email: Email | None = None
    external_id: ExternalId | None = Field(None, description="Your system's id for the user.")
    display_name: DisplayName = ""
    time_zone: TimeZone | None = Field(
        None,
        description="IANA time zone. Left out or null: not set, so the program's "
        "spec.proactive.timeZone applies (UTC when the program names none).",
    )
    locale: Locale = "en"
    program_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class EndUserUpdate(BaseModel):
    """Fields to change; a field left out keeps its value. ``email``, ``external_id``
    and ``time_zone`` may be set to null to clear them (a cleared time zone: the
    program's applies); the others always have a value."""

    email: Email | None = None
    external_id: ExternalId | None = None
    display_name: DisplayName | None = None
    time_zone: TimeZone | None = None
    locale: Locale | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> EndUserUpdate:
        cleared = [
            name
            for name in ("display_name", "locale")
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if cleared:
            raise ValueError(f"{', '.join(cleared)} cannot be null; leave it out to keep it")
        return self


class EnrolmentCreate(BaseModel):
    program_id: uuid.UUID


class EnrolmentPublic(BaseModel):
    program_id: uuid.UUID
    status: str
    enrolled_at: datetime


class ConsentUpdate(BaseModel):
    granted: bool
    address: Text = Field("", max_length=320, description="Handle on that channel, if any.")


class ConsentPublic(BaseModel):
    channel: Channel
    granted: bool
    address: str
    updated_at: datetime


class EndUserPublic(BaseModel):
    end_user_id: uuid.UUID
    email: str | None
    external_id: str | None
    display_name: str
    time_zone: str | None = Field(
        description="IANA time zone; null when not set (the program's "
        "spec.proactive.timeZone applies, else UTC)."
    )
    locale: str
    status: Literal["invited", "active"]
    created_at: datetime
    updated_at: datetime


class EndUserDetail(EndUserPublic):
    enrolments: list[EnrolmentPublic]
    consents: list[ConsentPublic]
