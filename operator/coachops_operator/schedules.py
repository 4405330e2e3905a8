"""ScheduleReady: every check-in's cron expression parses (croniter, five fields).

The runtime's API refuses a bad expression (the Pydantic model validates it), but
``kubectl apply`` only checks its length; the operator says what is wrong instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coachops_crds.cron import cron_problem
from coachops_operator import conditions as cond
from coachops_operator.conditions import Observation


def observe(spec: Mapping[str, Any]) -> Observation:
    """ScheduleReady for a program's raw spec."""
    check_ins = (spec.get("proactive") or {}).get("checkIns") or []
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
