"""Status conditions as pure data: merge new observations into the previous list.

``lastTransitionTime`` moves only when a condition's status changes, as the Kubernetes
API conventions ask; reason, message and observedGeneration follow every observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]

NAMESPACE_READY = "NamespaceReady"
DATABASE_READY = "DatabaseReady"
CACHE_READY = "CacheReady"
VECTOR_STORE_READY = "VectorStoreReady"
RUNTIME_READY = "RuntimeReady"
READY = "Ready"

CREATOR_PARTS = (NAMESPACE_READY, DATABASE_READY, CACHE_READY, VECTOR_STORE_READY, RUNTIME_READY)

SYNCED = "Synced"
SCHEDULE_READY = "ScheduleReady"
MODEL_READY = "ModelReady"
KNOWLEDGE_READY = "KnowledgeReady"
CHANNELS_READY = "ChannelsReady"
# A program's Ready is their conjunction; the first that is not True gives Ready its reason.
PROGRAM_PARTS = (SCHEDULE_READY, SYNCED, MODEL_READY, KNOWLEDGE_READY, CHANNELS_READY)


@dataclass(frozen=True)
class Observation:
    """One condition as observed now."""

    type: str
    status: Status
    reason: str
    message: str = ""

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Observation:
        return cls(type_, "True", reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Observation:
        return cls(type_, "False", reason, message)


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def merge(
    previous: Sequence[Mapping[str, Any]] | None,
    observations: Iterable[Observation],
    generation: int,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """The new conditions list: previous entries updated by ``observations``, in order."""
    stamp = now or now_rfc3339()
    by_type: dict[str, dict[str, Any]] = {
        str(item["type"]): dict(item) for item in (previous or []) if "type" in item
    }
    for obs in observations:
        old = by_type.get(obs.type)
        changed = old is None or old.get("status") != obs.status
        by_type[obs.type] = {
            "type": obs.type,
            "status": obs.status,
            "reason": obs.reason,
            "message": obs.message[:1024],
            "lastTransitionTime": (
                stamp if changed or old is None else old.get("lastTransitionTime", stamp)
            ),
            "observedGeneration": generation,
        }
    return list(by_type.values())


def summarize(
    parts: Sequence[Observation],
    *,
    suspended: bool = False,
    ready: str = "Every part of the tenant is in place",
) -> Observation:
    """``Ready``: True when every part is True; otherwise the first part that is not."""
    for part in parts:
        if part.status != "True":
            return Observation(READY, "False", part.reason, f"{part.type}: {part.message}")
    if suspended:
        return Observation.false(
            READY, "Suspended", "The tenant is provisioned but suspended: it serves no traffic"
        )
    return Observation.true(READY, "Reconciled", ready)


def observations(
    conditions: Sequence[Mapping[str, Any]] | None, types: Sequence[str]
) -> list[Observation]:
    """The conditions of ``types`` as observations, in that order (missing: Unknown)."""
    found = []
    for type_ in types:
        item = get(conditions, type_) or {}
        status = item.get("status", "Unknown")
        found.append(
            Observation(
                type_,
                status if status in ("True", "False") else "Unknown",
                str(item.get("reason") or "Pending"),
                str(item.get("message") or "not observed yet"),
            )
        )
    return found


def get(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for item in conditions or []:
        if item.get("type") == type_:
            return item
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    found = get(conditions, type_)
    return found is not None and found.get("status") == "True"
