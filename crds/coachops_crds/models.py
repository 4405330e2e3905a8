"""Pydantic models of the custom resources: the schema the CRDs are generated from.

Field descriptions become the CRD's OpenAPI descriptions (what ``kubectl explain``
prints); ``x-kubernetes-validations`` entries carry the CEL rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from coachops_crds.cron import cron_problem
from coachops_crds.zones import MAX_LENGTH as ZONE_MAX_LENGTH
from coachops_crds.zones import NAME_PATTERN as ZONE_PATTERN
from coachops_crds.zones import time_zone_problem


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

    name: str = Field(
        "", max_length=200, description="Contact person's name, for people reading the object."
    )
    email: str = Field(
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description=(
            "Contact e-mail address: the only address that may sign up as the creator's "
            "account (POST /v1/auth/signup)."
        ),
    )


class Plan(CrdModel):
    """Commercial plan and the quotas that enforce it."""

    name: str = Field("starter", max_length=63, description="Plan name, shown in listings.")
    max_programs: int = Field(
        3,
        ge=0,
        le=10_000,
        description=(
            "Most CoachingPrograms the creator may have: the tenant namespace's ResourceQuota "
            "counts them and the runtime's API refuses more."
        ),
    )
    max_end_users: int = Field(
        1_000,
        ge=0,
        le=10_000_000,
        description="Most end users across programs; the runtime's API refuses more.",
    )
    messages_per_month: int = Field(
        10_000,
        ge=0,
        le=1_000_000_000,
        description=(
            "Monthly quota of AI messages across programs (UTC months): the runtime reserves "
            "one when it accepts an end user's message for an AI reply and gives it back when "
            "no reply is generated; 429 once used up."
        ),
    )
    requests_per_second: int = Field(
        10,
        ge=1,
        le=10_000,
        description=(
            "Sustained rate of the tenant's creator-API requests; the runtime answers 429 above it."
        ),
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
    """Ollama models the creator's programs may use: the operator's allow-list."""

    chat: list[str] = Field(
        default_factory=lambda: ["coachops/tiny-chat:latest"],
        max_length=20,
        description=(
            "Chat models programs may select; a program naming another gets "
            "ModelReady=False (ModelNotAllowed). Empty: the platform's default list (an "
            "operator setting)."
        ),
    )
    embedding: list[str] = Field(
        default_factory=lambda: ["coachops/minilm:latest"],
        max_length=20,
        description=(
            "Embedding models programs may select; a program naming another gets "
            "ModelReady=False (ModelNotAllowed). Empty: the platform's default list (an "
            "operator setting)."
        ),
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
            "shared: served by the shared runtime. dedicated: the operator also makes a "
            "runtime Deployment, Service and autoscaler in the tenant namespace and a Redis "
            "user for the tenant; that runtime serves this tenant only, logging in with the "
            "tenant's own database role and verifying the platform's tokens."
        ),
    )
    runtime: RuntimeSpec = Field(
        default_factory=RuntimeSpec,
        description="Dedicated runtime size; ignored when isolation is shared.",
    )
    models: AllowedModels = Field(
        default_factory=AllowedModels,
        description=(
            "Models the creator's programs may use; the operator pulls only these onto Ollama."
        ),
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

    name: str = Field(
        min_length=1, max_length=100, description="The coach's name, in every reply's prompt."
    )
    instructions: str = Field(
        "",
        max_length=20_000,
        description="System instructions for the coach, in every reply's prompt.",
    )
    tone: str = Field(
        "warm",
        max_length=100,
        description="Tone of voice, e.g. warm, direct; in every reply's prompt.",
    )
    language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="BCP 47 language tag the prompt asks the coach to answer in.",
    )


DEFAULT_FALLBACK_TEXT = (
    "Sorry, I can't answer right now. Your message is saved and I'll reply as soon as I can."
)


class ModelSpec(CrdModel):
    """Models for replies and for knowledge retrieval."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.provider) || self.provider != 'openai' "
                    "|| (has(self.baseUrl) && self.baseUrl != '')",
                    "model.provider openai needs model.baseUrl",
                )
            ]
        }
    )

    provider: Literal["ollama", "openai"] = Field(
        "ollama",
        description=(
            "Who writes the replies: ollama (the platform's Ollama, or the Ollama server at "
            "baseUrl) or openai (any OpenAI-compatible chat completions API at baseUrl)."
        ),
    )
    base_url: str = Field(
        "",
        max_length=2048,
        pattern=r"^(https?://\S+)?$",
        description=(
            "The provider's URL: for openai the API base including /v1 (required); for "
            "ollama a server of its own, empty for the platform's."
        ),
    )
    api_key_secret_ref: str | None = Field(
        None,
        max_length=253,
        description=(
            "Secret in the namespace holding the provider's API key under api-key. The "
            "operator copies the key, encrypted, for the runtime (a rotated Secret within "
            "30 s); the openai provider sends it as its bearer token. A missing Secret or key "
            "makes ModelReady False (ProviderKeyMissing)."
        ),
    )
    fallback_text: str = Field(
        DEFAULT_FALLBACK_TEXT,
        min_length=1,
        max_length=2000,
        description=(
            "Sent to the end user when the provider does not answer after retries; the "
            "conversation is flagged for the creator (aiUnavailableSince) and the reply is "
            "retried until the provider answers."
        ),
    )
    chat: str = Field(
        "coachops/tiny-chat:latest",
        min_length=1,
        max_length=200,
        description=(
            "Chat model: the operator pulls it onto Ollama (status.modelPullPercent, "
            "ModelReady); a name without a registry host comes from the platform's model "
            "registry. The runtime's worker writes the AI replies with it (for the openai "
            "provider: the model name its endpoint knows)."
        ),
    )
    embedding: str = Field(
        "coachops/minilm:latest",
        min_length=1,
        max_length=200,
        description=(
            "Embedding model, pulled onto Ollama like the chat model; immutable, because the "
            "vectors stored with it depend on it."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self == oldSelf", "model.embedding is immutable: create a new program")
            ]
        },
    )
    temperature: float = Field(
        0.7, ge=0, le=2, description="Sampling temperature of the AI replies."
    )
    max_tokens: int = Field(512, ge=1, le=8192, description="Most tokens in one AI reply.")

    @model_validator(mode="after")
    def _openai_needs_base_url(self) -> ModelSpec:
        if self.provider == "openai" and not self.base_url:
            raise ValueError("model.provider openai needs model.baseUrl")
        return self


class KnowledgeSource(CrdModel):
    """One source of knowledge for the coach: an inline text or a ConfigMap."""

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

    name: str = Field(
        min_length=1,
        max_length=100,
        description=(
            "Name of the source: an inline text's document is named after it, each ConfigMap "
            "key's document <name>/<key>."
        ),
    )
    text: str | None = Field(
        None, max_length=100_000, description="Inline document text, ingested as plain text."
    )
    config_map_ref: str | None = Field(
        None,
        max_length=253,
        description=(
            "ConfigMap in the program's namespace: each key is one document, typed by its "
            "extension (.md, .html or .htm, .pdf and .docx from binaryData, anything else "
            "plain text); edits are picked up when the operator next evaluates the program."
        ),
    )


Channel = Literal["web", "telegram", "whatsapp", "sms", "email", "slack"]


class WhatsAppTemplate(CrdModel):
    """An approved WhatsApp message template, for replies outside the 24-hour window."""

    name: str = Field(
        min_length=1,
        max_length=512,
        pattern=r"^[a-z0-9_]+$",
        description=(
            "Name of a template approved for the WhatsApp Business account (lower-case "
            "letters, digits and underscores). Its body must take one text parameter: the "
            "reply, cut to 1,024 characters, goes there."
        ),
    )
    language: str = Field(
        "en",
        min_length=2,
        max_length=15,
        pattern=r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})?$",
        description="Language code the template was approved in, e.g. en or pt_BR.",
    )


class ChannelSpec(CrdModel):
    """One channel the coach talks on."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.type == 'web' || has(self.secretRef)",
                    "every channel except web needs secretRef naming its credentials Secret",
                ),
                cel(
                    "self.type != 'web' || !has(self.unknownSenders)",
                    "unknownSenders applies to provider channels, not web",
                ),
                cel(
                    "self.type == 'whatsapp' || !has(self.template)",
                    "template applies to the whatsapp channel only",
                ),
                cel(
                    "self.type == 'web' || !has(self.allowedOrigins)",
                    "allowedOrigins applies to the web channel only",
                ),
            ]
        }
    )

    type: Channel = Field(
        description=(
            "web, telegram, whatsapp, sms, email or slack. web is the runtime's end-user API. "
            "For the others the operator checks the channel's Secret and publishes its webhook "
            "URL in status.endpoints; the runtime receives telegram, whatsapp, sms and slack "
            "messages there, and email from a Mailgun inbound route, and its worker delivers "
            "the replies (email over the runtime's SMTP settings)."
        )
    )
    enabled: bool = Field(
        True,
        description=(
            "Whether the channel is on: only enabled channels get their keys copied and a "
            "webhook URL, and status.channels counts them. Turning web off does not close "
            "the end-user API yet (planned)."
        ),
    )
    secret_ref: str | None = Field(
        None,
        max_length=253,
        description=(
            "Secret in the namespace holding the channel's keys (telegram: bot-token, "
            "webhook-secret; whatsapp: access-token, app-secret, verify-token, "
            "phone-number-id; sms: account-sid, auth-token, from-number; slack: bot-token, "
            "signing-secret; email: from-address, webhook-secret). The operator checks it "
            "(ChannelsReady names what is missing) and copies the keys, encrypted, into the "
            "database within 30 s of a change."
        ),
    )
    unknown_senders: Literal["enrol", "ignore"] | None = Field(
        None,
        description=(
            "What the runtime does with a message from a sender it has no identity for on "
            "this channel: enrol (absent means enrol) creates an active end user, enrolled "
            "in this program, and answers; ignore acknowledges the webhook and drops the "
            "message."
        ),
    )
    template: WhatsAppTemplate | None = Field(
        None,
        description=(
            "whatsapp only: the approved template a reply is sent as when the end user last "
            "wrote more than 24 hours ago (WhatsApp allows free-form text only within that "
            "window). Without one such a reply is dead-lettered and can be retried."
        ),
    )
    allowed_origins: (
        list[
            Annotated[
                str,
                Field(
                    max_length=300,
                    pattern=r"^https?://([a-z0-9]([-a-z0-9.]*[a-z0-9])?|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$",
                ),
            ]
        ]
        | None
    ) = Field(
        None,
        max_length=20,
        description=(
            "web only: origins (scheme://host[:port], lower case, no path) of the pages that "
            "embed the chat widget. Browsers on these pages may call the end-user API "
            "(/v1/me, CORS); a call from a page on any other origin is refused with 403. "
            "Absent or empty: no page on another origin may."
        ),
    )


class QuietHours(CrdModel):
    """Local-time window in which the coach is never to reach out."""

    start: str = Field(
        "21:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description=(
            "Start, HH:MM in the end user's time zone. A proactive message due inside the "
            "window is deferred to its end, never dropped."
        ),
    )
    end: str = Field(
        "08:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description=(
            "End, HH:MM in the end user's time zone; before start: the window spans "
            "midnight; equal to start: no window."
        ),
    )


class CheckIn(CrdModel):
    """A check-in to send on a schedule in each end user's time zone."""

    name: str = Field(
        min_length=1,
        max_length=63,
        description=(
            "Name of the check-in, unique in the program: the runtime keeps one schedule per "
            "end user and name, and sends at most one check-in per name and local day."
        ),
    )
    cron: str = Field(
        min_length=9,
        max_length=100,
        description=(
            "Five-field cron expression, e.g. 0 9 * * *, evaluated on each end user's clock "
            "(their IANA time zone, else proactive.timeZone, else UTC): a time skipped by a "
            "spring-forward fires once at the first minute after the gap, a time repeated by "
            "a fall-back fires once. Parsed "
            "by croniter: the runtime's API refuses a bad one and the operator sets "
            "ScheduleReady=False (InvalidSchedule). A change applies from the next "
            "occurrence."
        ),
    )
    message: str = Field(
        "",
        max_length=2_000,
        description=(
            "Prompt for the check-in: the program's model writes the message from it, the "
            "persona, the conversation's summary and the end user's active goals."
        ),
    )
    template: str = Field(
        "",
        max_length=1_000,
        description=(
            "Text sent instead when the model does not answer in time (or content is "
            "template); {name} becomes the end user's display name. Empty: 'Hi {name}, "
            "checking in: how are things going?'."
        ),
    )
    content: Literal["ai", "template"] = Field(
        "ai",
        description="ai: written by the program's model, template as fallback; template: "
        "the template text always.",
    )

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Proactive(CrdModel):
    """When the coach is to reach out on its own."""

    check_ins: list[CheckIn] = Field(
        default_factory=list,
        max_length=20,
        description=(
            "Scheduled check-ins, sent by the runtime's worker into each enrolled end user's "
            "conversation (on the channel they last wrote on, else web), once per name and "
            "local day."
        ),
    )
    inactivity_nudge_hours: int = Field(
        0,
        ge=0,
        le=24 * 90,
        description=(
            "Nudge an end user who has not written for this many hours, once per silence; "
            "0 disables."
        ),
    )
    quiet_hours: QuietHours = Field(
        default_factory=QuietHours,
        description=(
            "No proactive message in this window of the end user's local time; what falls "
            "due inside it is sent when it ends."
        ),
    )
    max_per_day: int = Field(
        3,
        ge=0,
        le=48,
        description=(
            "Most proactive messages (check-ins, nudges, goal follow-ups) per end user and "
            "local day in this program; the ones over it are skipped and recorded."
        ),
    )
    time_zone: str | None = Field(
        None,
        min_length=1,
        max_length=ZONE_MAX_LENGTH,
        description=(
            "IANA time zone (e.g. Europe/Berlin) for the end users who have none of their "
            "own: their check-ins, quiet hours, goal follow-ups, local day and the AI "
            "prompt's local time use it; UTC when unset. An end user's own time zone comes "
            "first. The runtime's API refuses a name the IANA database does not know; for "
            "one that reached the cluster the operator sets ScheduleReady False "
            "(InvalidTimeZone) and does not copy the spec (Synced False, InvalidSpec), so the "
            "runtime keeps the last valid one. A change applies from the next occurrence."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{ZONE_PATTERN}')",
                    "proactive.timeZone must be an IANA time zone name such as "
                    "Europe/Berlin or UTC",
                )
            ]
        },
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        problem = None if value is None else time_zone_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Limits(CrdModel):
    """Per-program limits."""

    messages_per_user_per_day: int = Field(
        100,
        ge=1,
        le=100_000,
        description=(
            "Most messages an end user may send the AI coach per UTC day; above it the "
            "runtime answers 429 (daily-limit)."
        ),
    )


class Retention(CrdModel):
    """How long the runtime keeps a program's conversation content."""

    message_days: int = Field(
        0,
        ge=0,
        le=36_500,
        description=(
            "Keep messages this many days, then the runtime's worker deletes them (whole UTC "
            "days, in small batches); the daily analytics of those days are kept as totals. "
            "0 keeps messages forever."
        ),
    )


class SafetyResource(CrdModel):
    """A place an end user in crisis can turn to."""

    name: str = Field(min_length=1, max_length=100, description="Who they are, e.g. a helpline.")
    contact: str = Field(
        min_length=1, max_length=200, description="How to reach them: a number, text or URL."
    )
    region: str = Field(
        "", max_length=100, description="Where they help, e.g. US; empty for anywhere."
    )


class Safety(CrdModel):
    """What the coach does when a message needs a human rather than the AI."""

    escalation_email: str = Field(
        "",
        max_length=254,
        description=(
            "Where the runtime sends an alert (through the e-mail outbox) when a message "
            "shows crisis language; the alert holds the conversation's link and ids, never "
            "the message. Empty: no e-mail; the event is still listed in /v1/safety-events."
        ),
    )
    blocked_topics: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "Topics the coach declines: a message that names one (whole words, any case) "
            "gets a polite refusal instead of an AI reply, and a safety event is recorded."
        ),
    )
    resources: list[SafetyResource] = Field(
        default_factory=list,
        max_length=20,
        description=(
            "Resources named in the reply to a message with crisis language (self-harm or "
            "suicide, abuse, medical emergency); empty: a default set (emergency numbers, "
            "findahelpline.com and a few national lines). Such a message also pauses the AI "
            "in its conversation."
        ),
    )


class CoachingProgramSpec(CrdModel):
    """Desired state of an AI coaching program."""

    title: str = Field(min_length=1, max_length=200, description="Program title.")
    persona: Persona = Field(
        description="The coach's persona: the runtime's worker writes every AI reply with it."
    )
    model: ModelSpec = Field(
        default_factory=ModelSpec,
        description=(
            "Models to use: pulled onto Ollama by the operator; the runtime's worker replies "
            "with the chat model and retrieves knowledge with the embedding model."
        ),
    )
    knowledge: list[KnowledgeSource] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Knowledge for the coach: the operator copies each source into the tenant's "
            "documents and reports KnowledgeReady; the runtime's worker chunks and embeds "
            "them into ChromaDB and retrieves the closest passages for each AI reply, which "
            "cites them."
        ),
    )
    channels: list[ChannelSpec] = Field(
        default_factory=lambda: [ChannelSpec(type="web")],
        max_length=6,
        description=(
            "Channels, at most one of each type: telegram, whatsapp, sms, slack and email "
            "receive and send through the runtime's webhooks and worker, web is the end-user "
            "API."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    proactive: Proactive = Field(
        default_factory=Proactive,
        description=(
            "Proactive outreach: check-ins, inactivity nudges and goal follow-ups (the day "
            "before and on a goal's target date, 10:00 local), sent by the runtime's worker "
            "under quiet hours, maxPerDay, consent, WhatsApp's 24-hour window and pauses; "
            "the operator checks the check-in schedules (ScheduleReady)."
        ),
    )
    limits: Limits = Field(
        default_factory=Limits, description="Per-program limits, enforced by the runtime."
    )
    safety: Safety = Field(
        default_factory=Safety,
        description=(
            "Safety: every end-user message is checked for crisis language and blocked "
            "topics before the AI coach replies."
        ),
    )
    retention: Retention = Field(
        default_factory=Retention,
        description="How long messages are kept; by default, forever.",
    )


class CoachingProgramStatus(CrdModel):
    """Observed state of a program."""

    program_id: str = Field("", description="The program's id in the database.")
    model_pull_percent: int = Field(
        0,
        description=(
            "Progress of pulling the program's models onto Ollama, 0-100 (the lower of chat "
            "and embedding); 100 when both are there."
        ),
    )
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Inbound webhook URL per enabled channel except web: "
            "{base}/v1/hooks/{channel}/{programId}, where the runtime receives the provider's "
            "messages (telegram, whatsapp, sms, slack, email)."
        ),
    )
    knowledge_chunks: int = Field(
        0, description="Chunks of the program's knowledge stored for retrieval."
    )
    channels: int = Field(0, description="Number of enabled channels.")
    observed_generation: int = Field(0, description="Last .metadata.generation reconciled.")
    conditions: list[Condition] = conditions_field()
    kopf: dict[str, Any] = Field(
        default_factory=dict,
        description="The operator framework's own bookkeeping (the last handled spec and "
        "the progress of handlers being retried). Not for users.",
    )
