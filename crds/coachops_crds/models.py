"""Pydantic models of the custom resources: the schema the CRDs are generated from.

Field descriptions become the CRD's OpenAPI descriptions (what ``kubectl explain``
prints); ``x-kubernetes-validations`` entries carry the CEL rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict


def cel(rule: str, message: str, **extra: str) -> JsonDict:
    """One ``x-kubernetes-validations`` entry."""
    return {"rule": rule, "message": message, **extra}


class CrdModel(BaseModel):
    """Base for CRD fields: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Quantity = str

_QUANTITY_RULE = "isQuantity(self)"


def quantity(default: str, description: str) -> Any:
    """A resource quantity (``500m``, ``2``, ``4Gi``), checked by the apiserver."""
    return Field(
        default,
        min_length=1,
        max_length=32,
        description=description,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(_QUANTITY_RULE, "must be a Kubernetes quantity such as 500m, 2 or 4Gi")
            ]
        },
    )


def _not_above(low: str, high: str, message: str) -> JsonDict:
    """CEL: quantity ``low`` is at most quantity ``high`` (skipped if either is malformed)."""
    return cel(
        f"!has(self.{low}) || !has(self.{high}) || "
        f"!isQuantity(self.{low}) || !isQuantity(self.{high}) || "
        f"quantity(self.{low}).compareTo(quantity(self.{high})) <= 0",
        message,
    )


# ---------------------------------------------------------------- conditions


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CrdModel):
    """The latest observation of one aspect of the object's state."""

    type: str = Field(description="Type of the condition, such as Ready or DatabaseReady.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase word that says why the condition has its status.")
    message: str = Field("", description="Human-readable details of the last transition.")
    last_transition_time: datetime = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int = Field(
        0, description="The .metadata.generation this condition was computed from."
    )


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        description="Observations of the object's state, one per type.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


# ---------------------------------------------------------------- Creator


class Contact(CrdModel):
    """Who to reach about this tenant."""

    name: str = Field("", max_length=200, description="Contact person's name.")
    email: str = Field(
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Contact e-mail address for billing and incidents.",
    )


class Plan(CrdModel):
    """Commercial plan and the quotas that enforce it."""

    name: str = Field("starter", max_length=63, description="Plan name, shown in listings.")
    max_programs: int = Field(
        3, ge=0, le=10_000, description="Most CoachingPrograms the creator may run."
    )
    max_end_users: int = Field(
        1_000, ge=0, le=10_000_000, description="Most end users enrolled across programs."
    )
    messages_per_month: int = Field(
        10_000, ge=0, le=1_000_000_000, description="Monthly AI message quota across programs."
    )
    requests_per_second: int = Field(
        10, ge=1, le=10_000, description="Sustained API request rate allowed for the tenant."
    )
    cpu: Quantity = quantity(
        "2", "Total CPU the tenant namespace may request and use (ResourceQuota)."
    )
    memory: Quantity = quantity(
        "4Gi", "Total memory the tenant namespace may request and use (ResourceQuota)."
    )


class Resources(CrdModel):
    """Container resources of a dedicated runtime pod."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _not_above(
                    "cpuRequest",
                    "cpuLimit",
                    "runtime.resources.cpuRequest must not exceed cpuLimit",
                ),
                _not_above(
                    "memoryRequest",
                    "memoryLimit",
                    "runtime.resources.memoryRequest must not exceed memoryLimit",
                ),
            ]
        }
    )

    cpu_request: Quantity = quantity("250m", "CPU request per runtime pod.")
    cpu_limit: Quantity = quantity("1", "CPU limit per runtime pod.")
    memory_request: Quantity = quantity("256Mi", "Memory request per runtime pod.")
    memory_limit: Quantity = quantity("512Mi", "Memory limit per runtime pod.")


class RuntimeSpec(CrdModel):
    """Size of the dedicated runtime (used only when isolation is dedicated)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.maxReplicas) || !has(self.replicas) "
                    "|| self.maxReplicas >= self.replicas",
                    "runtime.maxReplicas must be greater than or equal to runtime.replicas",
                )
            ]
        }
    )

    replicas: int = Field(2, ge=1, le=50, description="Minimum number of runtime pods.")
    max_replicas: int = Field(
        4, ge=1, le=100, description="Most runtime pods the autoscaler may run."
    )
    image: str = Field(
        "",
        max_length=512,
        description="Runtime image; empty uses the operator's default runtime image.",
    )
    resources: Resources = Field(
        default_factory=Resources, description="Resources of each runtime pod."
    )


class AllowedModels(CrdModel):
    """Ollama models the creator's programs may use."""

    chat: list[str] = Field(
        default_factory=lambda: ["coachops/tiny-chat:latest"],
        max_length=20,
        description="Chat models programs may select.",
    )
    embedding: list[str] = Field(
        default_factory=lambda: ["coachops/minilm:latest"],
        max_length=20,
        description="Embedding models programs may select.",
    )


class CreatorSpec(CrdModel):
    """Desired state of a creator (a tenant)."""

    display_name: str = Field(
        min_length=1, max_length=200, description="Name shown to the creator's clients."
    )
    contact: Contact = Field(description="Who to reach about this tenant.")
    plan: Plan = Field(default_factory=Plan, description="Plan and quotas.")
    isolation: Literal["shared", "dedicated"] = Field(
        "shared",
        description=(
            "shared: served by the shared runtime. dedicated: a runtime Deployment in the "
            "tenant namespace with its own database role and Redis user."
        ),
    )
    runtime: RuntimeSpec = Field(
        default_factory=RuntimeSpec,
        description="Dedicated runtime size; ignored when isolation is shared.",
    )
    models: AllowedModels = Field(
        default_factory=AllowedModels, description="Models the creator's programs may use."
    )
    reclaim_policy: Literal["Retain", "Delete"] = Field(
        "Retain",
        description=(
            "What happens to the tenant's data when the Creator is deleted: Retain keeps "
            "database rows, vectors and cache keys; Delete removes them."
        ),
    )
    suspended: bool = Field(
        False,
        description=(
            "Suspends the tenant: the runtime refuses its traffic and a dedicated runtime "
            "scales to zero."
        ),
    )


class DatabaseStatus(CrdModel):
    """Where the tenant's database credentials are (never the credentials themselves)."""

    role: str = Field("", description="PostgreSQL login role bound to this tenant.")
    secret_name: str = Field(
        "", description="Secret in the tenant namespace holding the role's credentials."
    )


class CacheStatus(CrdModel):
    """Where the tenant's Redis keys live (never the password)."""

    key_prefix: str = Field("", description="Every Redis key of the tenant starts with this.")
    user: str = Field(
        "", description="Redis ACL user of a dedicated tenant; empty when isolation is shared."
    )


class VectorStoreStatus(CrdModel):
    """Where the tenant's knowledge vectors live."""

    tenant: str = Field("", description="ChromaDB tenant.")
    database: str = Field("", description="ChromaDB database inside the tenant.")


class CreatorStatus(CrdModel):
    """Observed state of a creator."""

    namespace: str = Field("", description="The tenant namespace.")
    tenant_id: str = Field("", description="The tenant's id in the database.")
    database: DatabaseStatus = Field(
        default_factory=DatabaseStatus, description="Database role and credential Secret."
    )
    cache: CacheStatus = Field(
        default_factory=CacheStatus, description="Redis key prefix and user."
    )
    vector_store: VectorStoreStatus = Field(
        default_factory=VectorStoreStatus, description="ChromaDB tenant and database."
    )
    suspended: bool = Field(False, description="Whether the tenant is suspended right now.")
    programs: int = Field(0, description="Number of CoachingPrograms in the namespace.")
    observed_generation: int = Field(0, description="Last .metadata.generation reconciled.")
    conditions: list[Condition] = conditions_field()
    kopf: dict[str, Any] = Field(
        default_factory=dict,
        description="The operator framework's own bookkeeping (the last handled spec and "
        "the progress of handlers being retried). Not for users.",
    )


# ---------------------------------------------------------------- CoachingProgram


class Persona(CrdModel):
    """Who the AI coach is and how it speaks."""

    name: str = Field(min_length=1, max_length=100, description="The coach's name.")
    instructions: str = Field(
        "", max_length=20_000, description="System instructions for the coach."
    )
    tone: str = Field("warm", max_length=100, description="Tone of voice, e.g. warm, direct.")
    language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="BCP 47 language tag the coach answers in.",
    )


class ModelSpec(CrdModel):
    """Models used for replies and for knowledge retrieval."""

    chat: str = Field(
        "coachops/tiny-chat:latest", min_length=1, max_length=200, description="Chat model."
    )
    embedding: str = Field(
        "coachops/minilm:latest",
        min_length=1,
        max_length=200,
        description="Embedding model; immutable because stored vectors depend on it.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self == oldSelf", "model.embedding is immutable: create a new program")
            ]
        },
    )
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, le=8192, description="Most tokens in one reply.")


class KnowledgeSource(CrdModel):
    """One source of knowledge the coach retrieves from."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.text) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) == 1",
                    "each knowledge source needs exactly one of text or configMapRef",
                )
            ]
        }
    )

    name: str = Field(min_length=1, max_length=100, description="Name of the source.")
    text: str | None = Field(None, max_length=100_000, description="Inline document text.")
    config_map_ref: str | None = Field(
        None, max_length=253, description="ConfigMap in the program's namespace to ingest."
    )


Channel = Literal["web", "telegram", "whatsapp", "sms", "email", "slack"]


class ChannelSpec(CrdModel):
    """One channel the coach talks on."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.type == 'web' || has(self.secretRef)",
                    "every channel except web needs secretRef naming its credentials Secret",
                )
            ]
        }
    )

    type: Channel = Field(description="web, telegram, whatsapp, sms, email or slack.")
    enabled: bool = Field(True, description="Whether the channel accepts and sends messages.")
    secret_ref: str | None = Field(
        None, max_length=253, description="Secret in the namespace holding the channel's tokens."
    )


class QuietHours(CrdModel):
    """Local-time window in which the coach never reaches out."""

    start: str = Field("21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM.")
    end: str = Field("08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM.")


class CheckIn(CrdModel):
    """A scheduled check-in, evaluated in each end user's time zone."""

    name: str = Field(min_length=1, max_length=63, description="Name of the check-in.")
    cron: str = Field(
        min_length=9, max_length=100, description="Five-field cron expression, e.g. 0 9 * * *."
    )
    message: str = Field("", max_length=2_000, description="Prompt for the check-in message.")


class Proactive(CrdModel):
    """When the coach reaches out on its own."""

    check_ins: list[CheckIn] = Field(
        default_factory=list, max_length=20, description="Scheduled check-ins."
    )
    inactivity_nudge_hours: int = Field(
        0, ge=0, le=24 * 90, description="Nudge after this many hours of silence; 0 disables."
    )
    quiet_hours: QuietHours = Field(
        default_factory=QuietHours, description="No outreach in this local-time window."
    )
    max_per_day: int = Field(3, ge=0, le=48, description="Most proactive messages per user/day.")


class Limits(CrdModel):
    """Per-program limits."""

    messages_per_user_per_day: int = Field(
        100, ge=1, le=100_000, description="Most AI replies per end user per day."
    )


class Safety(CrdModel):
    """What the coach does when a conversation needs a human."""

    escalation_email: str = Field(
        "", max_length=254, description="Where escalations are sent; empty disables e-mail."
    )
    blocked_topics: list[str] = Field(
        default_factory=list, max_length=50, description="Topics the coach declines."
    )


class CoachingProgramSpec(CrdModel):
    """Desired state of an AI coaching program."""

    title: str = Field(min_length=1, max_length=200, description="Program title.")
    persona: Persona = Field(description="The coach's persona.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Models to use.")
    knowledge: list[KnowledgeSource] = Field(
        default_factory=list, max_length=100, description="Knowledge the coach retrieves from."
    )
    channels: list[ChannelSpec] = Field(
        default_factory=lambda: [ChannelSpec(type="web")],
        max_length=6,
        description="Channels, at most one of each type.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    proactive: Proactive = Field(default_factory=Proactive, description="Proactive outreach.")
    limits: Limits = Field(default_factory=Limits, description="Per-program limits.")
    safety: Safety = Field(default_factory=Safety, description="Escalation policy.")


class CoachingProgramStatus(CrdModel):
    """Observed state of a program."""

    program_id: str = Field("", description="The program's id in the database.")
    model_pull_percent: int = Field(0, description="Chat model pull progress, 0-100.")
    endpoints: dict[str, str] = Field(default_factory=dict, description="Webhook URL per channel.")
    channels: int = Field(0, description="Number of enabled channels.")
    observed_generation: int = Field(0, description="Last .metadata.generation reconciled.")
    conditions: list[Condition] = conditions_field()
    kopf: dict[str, Any] = Field(
        default_factory=dict,
        description="The operator framework's own bookkeeping (the last handled spec and "
        "the progress of handlers being retried). Not for users.",
    )
