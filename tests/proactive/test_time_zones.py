"""The effective time zone of a check-in: the end user's, else the program's
``spec.proactive.timeZone``, else UTC; clearing an end user's zone or editing the
program's moves the next occurrence of the end users it applies to, and only theirs."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.proactive.conftest import World
from tests.runtime.conftest import Creator

NO_QUIET = {"start": "00:00", "end": "00:00"}
DAILY_8 = [{"name": "morning", "cron": "0 8 * * *", "content": "template"}]


def daily_8(time_zone: str | None = None) -> dict[str, Any]:
    proactive: dict[str, Any] = {"checkIns": DAILY_8, "quietHours": NO_QUIET}
    if time_zone is not None:
        proactive["timeZone"] = time_zone
    return proactive


async def occurrence(world: World, user: uuid.UUID) -> datetime:
    (row,) = await world.rows(
        "SELECT occurrence FROM proactive_schedules WHERE end_user_id = $1", user
    )
    found: datetime = row["occurrence"]
    return found


async def upcoming_local_time(world: World, creator: Creator, user: uuid.UUID) -> str:
    listed = await world.client.get(
        "/v1/proactive/schedules", params={"end_user_id": str(user)}, headers=creator.headers
    )
    assert listed.status_code == 200, listed.text
    (schedule,) = listed.json()
    local: str = schedule["local_time"]
    return local


async def test_the_programs_zone_applies_to_end_users_without_one(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 13, 0, tzinfo=UTC))  # 22:00 Tokyo, 09:00 New York
    creator = await world.creator()
    tokyo = await world.program(creator, daily_8("Asia/Tokyo"))
    plain = await world.program(creator, daily_8(), name="walk")
    unset = await world.end_user(creator, tokyo, None)
    new_york = await world.end_user(creator, tokyo, "America/New_York")
    unset_plain = await world.end_user(creator, plain, None)
    shown = await world.client.get(f"/v1/end-users/{unset}", headers=creator.headers)
    assert shown.json()["time_zone"] is None
    await world.tick()

    expected = {
        unset: (datetime(2026, 6, 1, 23, 0, tzinfo=UTC), "2026-06-02T08:00:00+09:00"),
        new_york: (datetime(2026, 6, 2, 12, 0, tzinfo=UTC), "2026-06-02T08:00:00-04:00"),
        unset_plain: (datetime(2026, 6, 2, 8, 0, tzinfo=UTC), "2026-06-02T08:00:00+00:00"),
    }
    for user, (at, local) in expected.items():
        assert await occurrence(world, user) == at
        assert await upcoming_local_time(world, creator, user) == local

    await world.run_until(datetime(2026, 6, 2, 13, 0, tzinfo=UTC), timedelta(hours=1))
    for user, (at, _) in expected.items():
        assert [m["created_at"] for m in await world.sent_messages(user)] == [at]
        (decision,) = await world.decisions(user)
        # The local day (maxPerDay's and the idempotency key's) is the effective zone's.
        assert (decision["outcome"], decision["local_day"]) == ("sent", date(2026, 6, 2))
        assert decision["occurrence_key"] == "2026-06-02"


async def test_clearing_an_end_users_zone_moves_them_to_the_programs(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 13, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, daily_8("Asia/Tokyo"))
    user = await world.end_user(creator, program, "America/New_York")
    await world.tick()
    assert await occurrence(world, user) == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)

    cleared = await world.client.patch(
        f"/v1/end-users/{user}", json={"time_zone": None}, headers=creator.headers
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["time_zone"] is None
    await world.tick()
    assert await occurrence(world, user) == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)

    # And back: a zone of their own again comes first.
    await world.client.patch(
        f"/v1/end-users/{user}", json={"time_zone": "Europe/Berlin"}, headers=creator.headers
    )
    await world.tick()
    assert await occurrence(world, user) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)


async def test_editing_the_programs_zone_moves_only_end_users_without_one(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 13, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, daily_8("Asia/Tokyo"))
    unset = await world.end_user(creator, program, None)
    berlin = await world.end_user(creator, program, "Europe/Berlin")
    await world.tick()
    assert await occurrence(world, unset) == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    assert await occurrence(world, berlin) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)

    # As the operator's copy writes it: the program trigger re-plans, the basis (cron and
    # zone) tells which occurrences changed.
    await world.update_proactive(creator, program, daily_8("America/Los_Angeles"))
    await world.tick()
    assert await occurrence(world, unset) == datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    assert await occurrence(world, berlin) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)

    await world.update_proactive(creator, program, daily_8())  # unset: UTC
    await world.tick()
    assert await occurrence(world, unset) == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    assert await occurrence(world, berlin) == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)


async def test_an_unknown_program_zone_reaching_the_database_counts_as_utc(
    world: World,
) -> None:
    # The API and the operator refuse such a spec; should one be stored all the same, the
    # scheduler plans in UTC rather than failing the batch.
    world.clock.set(datetime(2026, 6, 1, 13, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, daily_8("Mars/Olympus"))
    unset = await world.end_user(creator, program, None)
    tokyo = await world.end_user(creator, program, "Asia/Tokyo")
    await world.tick()
    assert await occurrence(world, unset) == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    assert await occurrence(world, tokyo) == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
