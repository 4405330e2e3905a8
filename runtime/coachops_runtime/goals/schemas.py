"""Goal schemas."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from coachops_runtime.kit.text import Storable

GoalStatus = Literal["active", "achieved", "abandoned"]
Title = Annotated[str, Field(min_length=1, max_length=200), Storable]
Details = Annotated[str, Field(max_length=2000), Storable]


class GoalCreate(BaseModel):
    title: Title
    details: Details = ""
    target_date: date | None = Field(None, description="When the goal is to be reached.")


class CreatorGoalCreate(GoalCreate):
    program_id: uuid.UUID = Field(description="A program the end user is enrolled in.")


class GoalUpdate(BaseModel):
    """Fields to change; ``target_date`` may be set to null to clear it."""

    title: Title | None = None
    details: Details | None = None
    target_date: date | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> GoalUpdate:
        cleared = [
            name
            for name in ("title", "details")
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if cleared:
            raise ValueError(f"{', '.join(cleared)} cannot be null; leave it out to keep it")
        return self


class GoalClose(BaseModel):
    status: Literal["achieved", "abandoned"]


class GoalPublic(BaseModel):
    goal_id: uuid.UUID
    end_user_id: uuid.UUID
    program_id: uuid.UUID
    title: str
    details: str
    target_date: date | None
    status: GoalStatus
    created_by: Literal["end_user", "creator"]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
