"""A program's ``spec.proactive`` as the engine reads it from the program row (camelCase,
as the operator copies it), through the CRD's models. Lenient: a field that does not
validate takes the CRD's default, a check-in that does not validate (a bad cron: the
operator reports it as ScheduleReady=False) is left out, so one bad entry stops nothing
else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from coachops_crds.models import CheckIn, Proactive, QuietHours
from coachops_runtime.proactive.timing import parse_hhmm

M = TypeVar("M", bound=BaseModel)

DEFAULT_QUIET = (time(21, 0), time(8, 0))
DEFAULT_MAX_PER_DAY = 3
DEFAULT_TEMPLATE = "Hi {name}, checking in: how are things going?"


@dataclass(frozen=True)
class CheckInConfig:
    name: str
    cron: str
    message: str
    template: str
    content: str  # "ai" or "template"


@dataclass(frozen=True)
class ProactiveConfig:
    check_ins: dict[str, CheckInConfig] = field(default_factory=dict)
    nudge_hours: int = 0
    quiet_start: time = DEFAULT_QUIET[0]
    quiet_end: time = DEFAULT_QUIET[1]
    max_per_day: int = DEFAULT_MAX_PER_DAY
    whatsapp_template: bool = False

    @classmethod
    def from_spec(cls, spec: Any) -> ProactiveConfig:
        if isinstance(spec, str):
            spec = json.loads(spec)
        spec = spec if isinstance(spec, Mapping) else {}
        # Parsed once per distinct text: a batch meets the same spec for each end user of
        # a program, and validating its crons is most of the cost.
        parts = [spec.get("proactive"), spec.get("channels")]
        return _parse(json.dumps(parts, sort_keys=True, default=str))


@lru_cache(maxsize=1024)
def _parse(parts: str) -> ProactiveConfig:
    """``spec.proactive`` and ``spec.channels`` (as JSON text) to their configuration."""
    raw, channels = json.loads(parts)
    raw = raw if isinstance(raw, Mapping) else {}
    proactive = Proactive.model_construct(
        check_ins=_valid(CheckIn, raw.get("checkIns")),
        inactivity_nudge_hours=_int(raw.get("inactivityNudgeHours"), 0),
        quiet_hours=(_valid(QuietHours, [raw.get("quietHours") or {}]) or [QuietHours()])[0],
        max_per_day=_int(raw.get("maxPerDay"), DEFAULT_MAX_PER_DAY),
    )
    check_ins: dict[str, CheckInConfig] = {}
    for check_in in proactive.check_ins:
        if check_in.name in check_ins:
            continue  # names are unique per program; the first one counts
        check_ins[check_in.name] = CheckInConfig(
            name=check_in.name,
            cron=check_in.cron,
            message=check_in.message,
            template=check_in.template or DEFAULT_TEMPLATE,
            content=check_in.content,
        )
    return ProactiveConfig(
        check_ins=check_ins,
        nudge_hours=proactive.inactivity_nudge_hours,
        quiet_start=_hhmm(proactive.quiet_hours.start, DEFAULT_QUIET[0]),
        quiet_end=_hhmm(proactive.quiet_hours.end, DEFAULT_QUIET[1]),
        max_per_day=proactive.max_per_day,
        whatsapp_template=_whatsapp_template(channels),
    )


def _valid(model: type[M], entries: Any) -> list[M]:
    """The entries that validate (as the CRD would admit them); the rest are left out."""
    found: list[M] = []
    for entry in entries if isinstance(entries, list) else ():
        try:
            found.append(model.model_validate(entry))
        except ValidationError:
            continue
    return found


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return default
    return int(value)


def _hhmm(value: str, default: time) -> time:
    try:
        return parse_hhmm(value)
    except ValueError:
        return default


def _whatsapp_template(channels: Any) -> bool:
    """Whether the WhatsApp channel names a template (the outbox's way out of the
    24-hour window)."""
    for entry in channels if isinstance(channels, list) else ():
        if isinstance(entry, Mapping) and entry.get("type") == "whatsapp":
            template = entry.get("template")
            return isinstance(template, Mapping) and isinstance(template.get("name"), str)
    return False
