"""Program schemas. The spec is the CRD's own model (coachops_crds), camelCase on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from coachops_crds.models import (
    ChannelSpec,
    CoachingProgramSpec,
    KnowledgeSource,
    Limits,
    ModelSpec,
    Persona,
    Proactive,
    Safety,
)
from coachops_runtime.kit.text import StorableTree, Text

# The spec passes through to the CoachingProgram object and, by the operator, into
# PostgreSQL: every string in it is checked as it arrives (StorableTree).

ProgramName = Field(
    min_length=1,
    max_length=63,
    pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    description="Name of the CoachingProgram object (a DNS label).",
)


class ProgramCreate(BaseModel):
    name: Text = ProgramName
    spec: Annotated[CoachingProgramSpec, StorableTree]


class ProgramUpdate(BaseModel):
    """Fields to change; each given field replaces the spec's field (JSON merge patch)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    title: Text | None = Field(None, min_length=1, max_length=200)
    persona: Annotated[Persona | None, StorableTree] = None
    model: Annotated[ModelSpec | None, StorableTree] = None
    knowledge: Annotated[list[KnowledgeSource] | None, StorableTree] = Field(None, max_length=100)
    channels: Annotated[list[ChannelSpec] | None, StorableTree] = Field(None, max_length=6)
    proactive: Annotated[Proactive | None, StorableTree] = None
    limits: Annotated[Limits | None, StorableTree] = None
    safety: Annotated[Safety | None, StorableTree] = None


class ConditionPublic(BaseModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""


Phase = Literal["Pending", "Ready", "NotReady", "Deleting"]


class ProgramStatus(BaseModel):
    """What the operator reports on the CoachingProgram object."""

    phase: Phase = Field(description="Pending until the operator has reconciled the change.")
    observed_generation: int = 0
    generation: int = 0
    model_pull_percent: int = Field(
        0,
        description="Chat model pull progress, 0-100, as the operator reports it on the "
        "CoachingProgram's status; 0 until it reports any.",
    )
    conditions: list[ConditionPublic] = []
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="Webhook URL per channel, as the operator reports it on the "
        "CoachingProgram's status; empty until it reports any.",
    )


class ProgramPublic(BaseModel):
    name: str
    program_id: uuid.UUID | None = Field(
        description="Id in the database; null until the operator has synced the program."
    )
    title: str
    spec: dict[str, Any] = Field(description="The CoachingProgram spec (camelCase).")
    created_at: datetime | None = None
    status_url: str
    status: ProgramStatus | None = Field(
        None, description="Live status from the CoachingProgram object, where requested."
    )
