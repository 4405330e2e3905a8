"""The rules a due occurrence meets at send time (not only when it was planned), in order;
the first that applies decides. ``maxPerDay`` is checked afterwards, under the end user's
lock (``engine.py``), since it counts what was sent.

A creator's "send now" passes quiet hours, staleness and ``maxPerDay``; nothing passes a
suspended tenant, an unenrolled or paused end user, a paused conversation, a withdrawn
consent or WhatsApp's window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from coachops_runtime.proactive.timing import in_quiet_hours, quiet_hours_end

WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Facts:
    now: datetime
    due_at: datetime
    send_now: bool
    suspended: bool
    enrolment: str | None
    conversation_paused: bool
    channel: str
    consent: bool | None
    last_inbound_at: datetime | None
    whatsapp_template: bool
    zone: ZoneInfo
    quiet_start: time
    quiet_end: time
    stale_after: timedelta


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "send", "deferred" or "skipped"
    reason: str
    until: datetime | None = None


def decide(facts: Facts) -> Verdict:
    if facts.suspended:
        return Verdict("skipped", "tenant_suspended")
    if facts.enrolment != "active":
        return Verdict("skipped", "unenrolled" if facts.enrolment in (None, "left") else "paused")
    if facts.conversation_paused:
        return Verdict("skipped", "conversation_paused")
    if facts.consent is False:
        return Verdict("skipped", "no_consent")
    if (
        facts.channel == "whatsapp"
        and not facts.whatsapp_template
        and (facts.last_inbound_at is None or facts.now - facts.last_inbound_at > WHATSAPP_WINDOW)
    ):
        return Verdict("skipped", "whatsapp_window")
    if facts.send_now:
        return Verdict("send", "sent_now")
    if facts.now - facts.due_at > facts.stale_after:
        return Verdict("skipped", "stale")
    if in_quiet_hours(facts.now, facts.zone, facts.quiet_start, facts.quiet_end):
        until = quiet_hours_end(facts.now, facts.zone, facts.quiet_end)
        return Verdict("deferred", "quiet_hours", until)
    return Verdict("send", "scheduled")
