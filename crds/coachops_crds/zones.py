"""IANA time zone names, checked against the zoneinfo database.

One function, shared by the Pydantic model (so the runtime's API answers 422) and the
operator (which reports an unknown zone that reached the cluster as ScheduleReady=False);
the CRD's CEL rule only rejects what cannot be a zone name at all.
"""

from __future__ import annotations

import re
import zoneinfo

# What a zone name looks like: "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires",
# "Etc/GMT+5". Checked before zoneinfo, which would read a path such as "../x" as a file.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
MAX_LENGTH = 64
_NAME = re.compile(NAME_PATTERN)


def time_zone_problem(name: str) -> str | None:
    """Why ``name`` is not a known IANA time zone, or None when it is."""
    if len(name) > MAX_LENGTH or not _NAME.match(name):
        return f"time zone {name!r} is not an IANA time zone name such as Europe/Berlin or UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"time zone {name!r} is not in the IANA time zone database"
    return None
