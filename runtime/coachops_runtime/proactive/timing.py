"""Local time: cron occurrences in an end user's IANA zone, and quiet hours.

A cron expression is evaluated on the wall clock of the zone (croniter on naive local
times), and each wall time is then placed on the UTC line with two explicit
daylight-saving rules:

* a wall time that does not exist (skipped by a spring-forward, e.g. 02:30 in Berlin on
  the last Sunday of March) fires once, at the first minute after the gap (03:00); several
  skipped times collapse into that one occurrence;
* a wall time that exists twice (repeated by a fall-back, e.g. 02:30 on the last Sunday
  of October) fires once, at its first occurrence (summer time); the repeated hour is not
  fired again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

MAX_CANDIDATES = 2_000  # a cron that names no reachable time (e.g. 30 Feb) ends the search
HHMM = "%H:%M"


def zone_of(name: str) -> ZoneInfo:
    """The zone named ``name`` (the effective zone: the end user's, else the program's);
    an unknown name (the API and the operator refuse one) counts as UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def place(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall time in ``zone``, by the rules above."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists (once, or twice: fold=0 is the first time)
    # In a gap: fold=0 reads it with the offset before the change, fold=1 with the one
    # after; the change lies between the two instants. Its minute is the answer.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    offset = low.astimezone(zone).utcoffset()
    probe = low.replace(second=0, microsecond=0)
    while probe < high and probe.astimezone(zone).utcoffset() == offset:
        probe += timedelta(minutes=1)
    return probe


@lru_cache(maxsize=4096)
def next_occurrence(cron: str, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first occurrence of ``cron`` in ``zone`` strictly after ``after`` (UTC).

    Cached: the end users of a check-in who share a zone share their occurrences, so a
    batch asks the same question for each of them (and croniter's parsing and stepping
    was most of a check-in's CPU)."""
    wall = after.astimezone(zone).replace(tzinfo=None)
    # Start one hour back on the wall clock: after a fall-back, a wall time behind the
    # current one may still lie ahead on the UTC line.
    times = croniter(cron, wall - timedelta(hours=1))
    try:
        for _ in range(MAX_CANDIDATES):
            candidate = place(times.get_next(datetime), zone)
            if candidate > after:
                return candidate
    except CroniterBadDateError:
        pass  # a date that never comes, such as 30 February
    return None


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def parse_hhmm(value: str) -> time:
    return datetime.strptime(value, HHMM).time()


def in_quiet_hours(instant: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    """Whether ``instant`` is inside the local window [start, end); a window that ends
    before it starts spans midnight; start == end is no window."""
    now = instant.astimezone(zone).time()
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def quiet_hours_end(instant: datetime, zone: ZoneInfo, end: time) -> datetime:
    """The first local ``end`` time after ``instant`` (where a deferred send goes)."""
    local = instant.astimezone(zone)
    day = local.date()
    for offset in range(3):
        candidate = place(datetime.combine(day + timedelta(days=offset), end), zone)
        if candidate > instant:
            return candidate
    return instant  # unreachable: some day within three has the end time ahead


def at_local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``clock`` on local ``day``."""
    return place(datetime.combine(day, clock), zone)
