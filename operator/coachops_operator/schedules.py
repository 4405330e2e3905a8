"""ScheduleReady: every check-in's cron expression parses (croniter, five fields) and
``proactive.timeZone``, if set, is a zone the IANA database knows.

The runtime's API refuses either (the Pydantic model validates them), but ``kubectl
apply`` only checks a cron's length and a zone name's shape; the operator says what is
wrong instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coachops_crds.cron import cron_problem
from coachops_crds.zones import time_zone_problem
from coachops_operator import conditions as cond
from coachops_operator.conditions import Observation


def observe(spec: Mapping[str, Any]) -> Observation:
    """ScheduleReady for a program's raw spec."""
    proactive = spec.get("proactive") or {}
    zone = proactive.get("timeZone")
    problem = None if zone is None else time_zone_problem(str(zone))
    if problem:
        return Observation.false(
            cond.SCHEDULE_READY, "InvalidTimeZone", f"spec.proactive.timeZone: {problem}"
        )
    check_ins = proactive.get("checkIns") or []
    for index, check_in in enumerate(check_ins):
        problem = cron_problem(str(check_in.get("cron", "")))
        if problem:
            name = check_in.get("name") or f"#{index}"
            return Observation.false(
                cond.SCHEDULE_READY,
                "InvalidSchedule",
                f"spec.proactive.checkIns[{index}] ({name}): {problem}",
            )
    count = len(check_ins)
    return Observation.true(
        cond.SCHEDULE_READY,
        "Valid" if count else "NoCheckIns",
        f"{count} check-in schedule(s) parse" if count else "no check-ins",
    )
