"""What a schedule row stands for (a check-in, the inactivity nudge, a goal's follow-ups):
its occurrences, the basis they are computed from, and what to say.

An occurrence carries its idempotency key: a check-in's is the end user's local date (one
per check-in per local day), a nudge's the start of the silence it answers (one per
silence), a goal follow-up's the target date and the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from coachops_runtime.proactive.config import CheckInConfig
from coachops_runtime.proactive.timing import at_local, local_date, next_occurrence

GOAL_TIME = time(10, 0)  # goal follow-ups: 10:00 local, the day before and on the day
NUDGE_TEMPLATE = "Hi {name}, it has been a while. How are you doing?"
GOAL_TEMPLATE = "Hi {name}, how is your goal \u201c{title}\u201d going? It is due {when}."
AI_PREAMBLE = (
    "(This is not a message from the end user. Write the coach's next message yourself, "
    "reaching out first, in two sentences at most.) "
)


@dataclass(frozen=True)
class Occurrence:
    at: datetime
    key: str


class Target(Protocol):
    @property
    def message_kind(self) -> str:
        """The kind of message it sends (``messages.kind``)."""
        ...

    def basis(self) -> str: ...

    def next(self, after: datetime) -> Occurrence | None:
        """The first occurrence strictly after ``after``, or None when there is none."""
        ...

    def prompt(self, occurrence: Occurrence) -> str: ...

    def template(self, occurrence: Occurrence, name: str) -> str: ...

    @property
    def uses_ai(self) -> bool: ...


def _named(text: str, **values: str) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@dataclass(frozen=True)
class CheckInTarget:
    check_in: CheckInConfig
    zone: ZoneInfo
    message_kind: str = "check_in"

    def basis(self) -> str:
        return f"{self.check_in.cron}|{self.zone.key}"

    def next(self, after: datetime) -> Occurrence | None:
        at = next_occurrence(self.check_in.cron, self.zone, after)
        return None if at is None else Occurrence(at, local_date(at, self.zone).isoformat())

    def prompt(self, occurrence: Occurrence) -> str:
        return AI_PREAMBLE + (
            self.check_in.message or "Check in on how they are doing with the program."
        )

    def template(self, occurrence: Occurrence, name: str) -> str:
        return _named(self.check_in.template, name=name or "there")

    @property
    def uses_ai(self) -> bool:
        return self.check_in.content == "ai"


@dataclass(frozen=True)
class NudgeTarget:
    hours: int
    silence_start: datetime
    last_key: str | None
    message_kind: str = "nudge"

    def basis(self) -> str:
        return f"{self.hours}|{self.silence_start.isoformat()}"

    def next(self, after: datetime) -> Occurrence | None:
        key = self.silence_start.isoformat()
        if key == self.last_key:
            return None  # this silence had its nudge
        return Occurrence(self.silence_start + timedelta(hours=self.hours), key)

    def prompt(self, occurrence: Occurrence) -> str:
        return AI_PREAMBLE + (
            f"They have not written for {self.hours} hours. Invite them back warmly, "
            "without pressure."
        )

    def template(self, occurrence: Occurrence, name: str) -> str:
        return _named(NUDGE_TEMPLATE, name=name or "there")

    @property
    def uses_ai(self) -> bool:
        return True


@dataclass(frozen=True)
class GoalTarget:
    title: str
    target_date: date
    zone: ZoneInfo
    message_kind: str = "check_in"

    def basis(self) -> str:
        return f"{self.target_date.isoformat()}|{self.zone.key}"

    def next(self, after: datetime) -> Occurrence | None:
        day = self.target_date
        for stage, when in (("before", day - timedelta(days=1)), ("due", day)):
            at = at_local(when, GOAL_TIME, self.zone)
            if at > after:
                return Occurrence(at, f"{day.isoformat()}:{stage}")
        return None

    def _when(self, occurrence: Occurrence) -> str:
        return "tomorrow" if occurrence.key.endswith(":before") else "today"

    def prompt(self, occurrence: Occurrence) -> str:
        return AI_PREAMBLE + (
            f"Their goal \u201c{self.title}\u201d is due {self._when(occurrence)}. Ask how it "
            "is going and offer one concrete next step."
        )

    def template(self, occurrence: Occurrence, name: str) -> str:
        return _named(
            GOAL_TEMPLATE, name=name or "there", title=self.title, when=self._when(occurrence)
        )

    @property
    def uses_ai(self) -> bool:
        return True
