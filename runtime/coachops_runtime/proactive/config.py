"""A program's ``spec.proactive`` as the engine reads it from the program row (camelCase,
as the operator copies it). Lenient: a field that does not parse takes the CRD's default,
a check-in whose cron does not parse is left out (the operator reports it as
ScheduleReady=False), so one bad entry stops nothing else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from coachops_crds.cron import cron_problem
from coachops_runtime.proactive.timing import parse_hhmm

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
        raw = spec.get("proactive")
        raw = raw if isinstance(raw, Mapping) else {}
        check_ins: dict[str, CheckInConfig] = {}
        entries = raw.get("checkIns")
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, Mapping):
                continue
            name, cron = str(entry.get("name") or ""), str(entry.get("cron") or "")
            if not name or name in check_ins or cron_problem(cron):
                continue
            check_ins[name] = CheckInConfig(
                name=name,
                cron=cron,
                message=str(entry.get("message") or ""),
                template=str(entry.get("template") or "") or DEFAULT_TEMPLATE,
                content="template" if entry.get("content") == "template" else "ai",
            )
        quiet = raw.get("quietHours")
        quiet = quiet if isinstance(quiet, Mapping) else {}
        return cls(
            check_ins=check_ins,
            nudge_hours=_int(raw.get("inactivityNudgeHours"), 0),
            quiet_start=_hhmm(quiet.get("start"), DEFAULT_QUIET[0]),
            quiet_end=_hhmm(quiet.get("end"), DEFAULT_QUIET[1]),
            max_per_day=_int(raw.get("maxPerDay"), DEFAULT_MAX_PER_DAY),
            whatsapp_template=_whatsapp_template(spec),
        )


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return default
    return int(value)


def _hhmm(value: Any, default: time) -> time:
    try:
        return parse_hhmm(str(value)) if value is not None else default
    except ValueError:
        return default


def _whatsapp_template(spec: Mapping[str, Any]) -> bool:
    """Whether the WhatsApp channel names a template (the outbox's way out of the
    24-hour window)."""
    channels = spec.get("channels")
    for entry in channels if isinstance(channels, list) else ():
        if isinstance(entry, Mapping) and entry.get("type") == "whatsapp":
            template = entry.get("template")
            return isinstance(template, Mapping) and isinstance(template.get("name"), str)
    return False
