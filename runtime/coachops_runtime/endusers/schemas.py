"""End users of the creator's programs: profiles, enrolments and per-channel consent."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

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
    AfterValidator(_time_zone),
]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Locale = Annotated[
    str, Field(min_length=2, max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
]
DisplayName = Annotated[str, Field(max_length=200)]
ExternalId = Annotated[str, Field(min_length=1, max_length=200)]


class EndUserCreate(BaseModel):
    """Invite an end user; enrol them in programs at once if you like."""

    email: Email | None = None
    external_id: ExternalId | None = Field(None, description="Your system's id for the user.")
    display_name: DisplayName = ""
    time_zone: TimeZone = "UTC"
    locale: Locale = "en"
    program_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class EndUserUpdate(BaseModel):
    email: Email | None = None
    external_id: ExternalId | None = None
    display_name: DisplayName | None = None
    time_zone: TimeZone | None = None
    locale: Locale | None = None


class EnrolmentCreate(BaseModel):
    program_id: uuid.UUID


class EnrolmentPublic(BaseModel):
    program_id: uuid.UUID
    status: str
    enrolled_at: datetime


class ConsentUpdate(BaseModel):
    granted: bool
    address: str = Field("", max_length=320, description="Handle on that channel, if any.")


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
    time_zone: str
    locale: str
    status: Literal["invited", "active"]
    created_at: datetime
    updated_at: datetime


class EndUserDetail(EndUserPublic):
    enrolments: list[EnrolmentPublic]
    consents: list[ConsentPublic]
