"""Pure parts of the engine: placing wall times across DST changes, cron occurrences,
quiet hours, reading a program's spec leniently, the rules' order, the targets, the
clocks."""

from __future__ import annotations

import json
import time as wall
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from coachops_runtime.proactive.clock import FixedClock, ScaledClock, SystemClock
from coachops_runtime.proactive.config import DEFAULT_TEMPLATE, ProactiveConfig
from coachops_runtime.proactive.rules import Facts, decide
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.targets import GoalTarget, NudgeTarget, Occurrence
from coachops_runtime.proactive.timing import (
    in_quiet_hours,
    next_occurrence,
    place,
    quiet_hours_end,
    zone_of,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def test_place_a_skipped_time_at_the_end_of_the_gap() -> None:
    # 2027-03-28: Berlin jumps from 02:00 CET to 03:00 CEST (01:00 UTC).
    for minute in (0, 1, 30, 59):
        at = place(datetime(2027, 3, 28, 2, minute), BERLIN)
        assert at == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    # New York: 2027-03-14, 02:00 EST -> 03:00 EDT (07:00 UTC).
    assert place(datetime(2027, 3, 14, 2, 30), NEW_YORK) == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)


def test_place_a_repeated_time_at_its_first_occurrence() -> None:
    # 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and 01:30 UTC (CET).
    assert place(datetime(2026, 10, 25, 2, 30), BERLIN) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert place(datetime(2026, 10, 25, 12, 0), BERLIN) == datetime(2026, 10, 25, 11, 0, tzinfo=UTC)


def test_next_occurrence_across_a_fall_back() -> None:
    # During the second 02:10 (CET, 01:10 UTC) the 02:30 of that day has passed already.
    after = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    assert next_occurrence("30 2 * * *", BERLIN, after) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    # During the first 02:10 (CEST) it is still ahead.
    after = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)
    assert next_occurrence("30 2 * * *", BERLIN, after) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # Every 20 minutes through the repeated hour: the second pass is not fired.
    at, seen = datetime(2026, 10, 24, 23, 50, tzinfo=UTC), []
    while at < datetime(2026, 10, 25, 2, 30, tzinfo=UTC):
        found = next_occurrence("*/20 * * * *", BERLIN, at)
        assert found is not None
        seen.append(found.astimezone(BERLIN).strftime("%H:%M"))
        at = found
    assert seen == ["02:00", "02:20", "02:40", "03:00", "03:20", "03:40"]


def test_a_cron_that_never_fires_has_no_occurrence() -> None:
    assert next_occurrence("0 9 30 2 *", BERLIN, datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_quiet_hours_windows() -> None:
    evening, morning = time(21, 0), time(8, 0)
    at = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Berlin
    assert in_quiet_hours(at, BERLIN, evening, morning)
    assert not in_quiet_hours(at, BERLIN, morning, evening)  # 08:00-21:00 does not span it
    assert not in_quiet_hours(at, BERLIN, morning, morning)  # an empty window
    assert in_quiet_hours(datetime(2026, 6, 1, 10, 0, tzinfo=UTC), BERLIN, morning, evening)
    assert quiet_hours_end(at, BERLIN, morning) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    early = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)  # 05:00 in Berlin
    assert quiet_hours_end(early, BERLIN, morning) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)


def test_unknown_zones_count_as_utc() -> None:
    assert zone_of("Mars/Olympus").key == "UTC"
    assert zone_of("").key == "UTC"
    assert zone_of("Asia/Tokyo").key == "Asia/Tokyo"


def test_config_reads_the_spec_leniently() -> None:
    spec = {
        "channels": [{"type": "whatsapp", "template": {"name": "coach", "language": "en"}}],
        "proactive": {
            "checkIns": [
                {"name": "a", "cron": "0 9 * * *", "message": "How did you sleep?"},
                {"name": "a", "cron": "0 10 * * *"},  # a second "a": the first counts
                {"name": "bad", "cron": "61 9 * * *"},  # refused by the CRD: left out
                {"name": "extra", "cron": "0 9 * * *", "unknown": 1},
                "not an object",
                {"name": "t", "cron": "0 7 * * *", "content": "template", "template": "Yo"},
            ],
            "inactivityNudgeHours": 48,
            "quietHours": {"start": "22:00", "end": "25:00"},
            "maxPerDay": 1,
        },
    }
    config = ProactiveConfig.from_spec(json.dumps(spec))
    assert sorted(config.check_ins) == ["a", "t"]
    assert config.check_ins["a"].cron == "0 9 * * *"
    assert config.check_ins["a"].template == DEFAULT_TEMPLATE
    assert config.check_ins["a"].content == "ai"
    assert (config.check_ins["t"].template, config.check_ins["t"].content) == ("Yo", "template")
    assert config.nudge_hours == 48
    assert (config.quiet_start, config.quiet_end) == (time(21, 0), time(8, 0))  # invalid: default
    assert config.max_per_day == 1
    assert config.whatsapp_template


@pytest.mark.parametrize(
    "spec",
    [None, "null", [], {"proactive": []}, {"proactive": {"maxPerDay": -1, "checkIns": {}}}],
)
def test_config_of_a_spec_without_a_usable_proactive_part(spec: object) -> None:
    config = ProactiveConfig.from_spec(spec)
    assert config.check_ins == {}
    assert config.nudge_hours == 0
    assert config.max_per_day == 3
    assert not config.whatsapp_template


def facts(**changes: object) -> Facts:
    base: dict[str, object] = {
        "now": datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
        "due_at": datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
        "send_now": False,
        "suspended": False,
        "enrolment": "active",
        "conversation_paused": False,
        "channel": "whatsapp",
        "consent": None,
        "last_inbound_at": datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
        "whatsapp_template": False,
        "zone": BERLIN,
        "quiet_start": time(21, 0),
        "quiet_end": time(8, 0),
        "stale_after": timedelta(hours=12),
    }
    return Facts(**{**base, **changes})  # type: ignore[arg-type]


def test_the_rules_in_order() -> None:
    assert decide(facts()).reason == "scheduled"
    assert decide(facts(suspended=True, enrolment="left")).reason == "tenant_suspended"
    assert decide(facts(enrolment="left")).reason == "unenrolled"
    assert decide(facts(enrolment=None)).reason == "unenrolled"
    assert decide(facts(enrolment="paused")).reason == "paused"
    assert decide(facts(conversation_paused=True)).reason == "conversation_paused"
    assert decide(facts(consent=False)).reason == "no_consent"
    assert decide(facts(consent=True)).reason == "scheduled"
    old = datetime(2026, 5, 30, 12, 0, tzinfo=UTC)
    assert decide(facts(last_inbound_at=old)).reason == "whatsapp_window"
    assert decide(facts(last_inbound_at=None)).reason == "whatsapp_window"
    assert decide(facts(last_inbound_at=old, whatsapp_template=True)).reason == "scheduled"
    assert decide(facts(last_inbound_at=old, channel="telegram")).reason == "scheduled"
    stale = datetime(2026, 5, 31, 23, 0, tzinfo=UTC)
    assert decide(facts(due_at=stale)).reason == "stale"
    assert decide(facts(due_at=stale, send_now=True)).reason == "sent_now"
    night = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)  # 23:00 in Berlin
    verdict = decide(facts(now=night, due_at=night, last_inbound_at=night))
    assert (verdict.outcome, verdict.reason) == ("deferred", "quiet_hours")
    assert verdict.until == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    assert decide(facts(now=night, due_at=night, last_inbound_at=night, send_now=True)).outcome == (
        "send"
    )


def test_nudge_and_goal_targets() -> None:
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    nudge = NudgeTarget(24, start, None)
    occurrence = nudge.next(start)
    assert occurrence == Occurrence(start + timedelta(hours=24), start.isoformat())
    assert NudgeTarget(24, start, start.isoformat()).next(start) is None
    assert "24 hours" in nudge.prompt(occurrence)
    assert nudge.template(occurrence, "") == "Hi there, it has been a while. How are you doing?"
    assert nudge.uses_ai
    goal = GoalTarget("Run 5k", date(2026, 6, 3), BERLIN)
    before = goal.next(datetime(2026, 6, 1, tzinfo=UTC))
    assert before == Occurrence(datetime(2026, 6, 2, 8, 0, tzinfo=UTC), "2026-06-03:before")
    due = goal.next(before.at)
    assert due == Occurrence(datetime(2026, 6, 3, 8, 0, tzinfo=UTC), "2026-06-03:due")
    assert goal.next(due.at) is None
    assert "due tomorrow" in goal.template(before, "Ana")
    assert "due today" in goal.prompt(due)
    assert goal.basis() == "2026-06-03|Europe/Berlin"


def test_clocks() -> None:
    fixed = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert fixed.advance(timedelta(hours=1)) == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert abs((SystemClock().now() - datetime.now(UTC)).total_seconds()) < 5
    scaled = ScaledClock(datetime(2026, 1, 1, tzinfo=UTC), wall.time() - 10, 60)
    assert (
        timedelta(minutes=9)
        < scaled.now() - datetime(2026, 1, 1, tzinfo=UTC)
        < timedelta(minutes=11)
    )
    assert isinstance(ProactiveSettings().clock(), SystemClock)
    configured = ProactiveSettings(
        clock_start=datetime(2026, 1, 1, tzinfo=UTC), clock_epoch=wall.time(), clock_speed=2
    )
    assert isinstance(configured.clock(), ScaledClock)
