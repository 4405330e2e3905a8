"""Schemas of the creator (tenant) resource as the creator sees it."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from coachops_crds.models import Plan


class Tenant(BaseModel):
    """The tenant a request runs under (from the operator's copy of the Creator)."""

    creator_id: uuid.UUID
    name: str
    display_name: str
    contact_email: str
    plan: Plan
    suspended: bool


class PlanPublic(BaseModel):
    name: str
    max_programs: int
    max_end_users: int
    messages_per_month: int
    requests_per_second: int


class CreatorPublic(BaseModel):
    """The caller's own tenant."""

    creator_id: uuid.UUID
    name: str = Field(description="The Creator object's name (also its namespace suffix).")
    display_name: str
    namespace: str = Field(description="Namespace holding the creator's CoachingPrograms.")
    plan: PlanPublic
    suspended: bool


class AiUsagePublic(BaseModel):
    """The AI replies generated this month (UTC) and the tokens they took, all programs
    together (``GET /v1/creator/usage/ai`` breaks them down per program and month)."""

    replies: int
    prompt_tokens: int
    completion_tokens: int


class UsagePublic(BaseModel):
    """Consumption against the plan this month."""

    month: str = Field(description="YYYY-MM (UTC).")
    messages_used: int | None = Field(
        description="AI messages this month; null when the quota store is unavailable."
    )
    messages_per_month: int
    programs: int
    max_programs: int
    end_users: int
    max_end_users: int
    ai: AiUsagePublic
