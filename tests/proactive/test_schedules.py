"""Check-ins in the end user's time zone across daylight-saving changes, quiet hours,
maxPerDay, and a program edit that moves the next occurrence."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.proactive.conftest import World

NO_QUIET = {"start": "00:00", "end": "00:00"}
DAILY_8 = {"checkIns": [{"name": "morning", "cron": "0 8 * * *", "content": "template"}]}


async def test_daily_0800_in_tokyo_berlin_and_new_york_across_a_dst_week(world: World) -> None:
    # 2026-10-23 12:00 UTC to 2026-11-02 12:00 UTC: Berlin leaves summer time on Oct 25,
    # New York on Nov 1; Tokyo has none.
    creator = await world.creator()
    program = await world.program(
        creator, {**DAILY_8, "quietHours": {"start": "22:00", "end": "06:00"}}
    )
    await world.wire_telegram(creator, program)
    zones = ["Asia/Tokyo", "Europe/Berlin", "America/New_York"]
    users = {}
    for zone in zones:
        user = await world.end_user(creator, program, zone)
        users[zone] = (user, await world.on_telegram(creator, program, user))
    end = world.clock.now() + timedelta(days=10)
    await world.run_until(end, timedelta(minutes=20))
    await world.deliver()

    for zone, (user, chat) in users.items():
        local = ZoneInfo(zone)
        sent = await world.sent_messages(user)
        days = [m["created_at"].astimezone(local) for m in sent]
        # Exactly one per local day, each at 08:00 local, every day of the span.
        assert all(d.time() == time(8, 0) for d in days), (zone, days)
        per_day = Counter(d.date() for d in days)
        assert all(n == 1 for n in per_day.values()), (zone, per_day)
        first = world.clock.now() - timedelta(days=10)
        expected = {(first + timedelta(days=k)).astimezone(local).date() for k in range(0, 12)}
        expected = {d for d in expected if first < datetime.combine(d, time(8, 0), local) <= end}
        assert set(per_day) == expected, zone
        assert all(m["kind"] == "check_in" for m in sent)
        # What the provider received: one message per send, nothing more.
        assert len(world.received(chat)) == len(sent)
        decisions = await world.decisions(user)
        assert [d["outcome"] for d in decisions] == ["sent"] * len(sent)
        assert [d["occurrence_key"] for d in decisions] == [d.date().isoformat() for d in days]


async def test_a_time_skipped_by_spring_forward_fires_once_at_the_next_valid_minute(
    world: World,
) -> None:
    world.clock.set(datetime(2027, 3, 27, 12, 0, tzinfo=UTC))  # Berlin springs forward on the 28th
    creator = await world.creator()
    program = await world.program(
        creator,
        {
            "checkIns": [{"name": "night", "cron": "*/20 2 * * *", "content": "template"}],
            "quietHours": NO_QUIET,
            "maxPerDay": 10,
        },
    )
    user = await world.end_user(creator, program, "Europe/Berlin")
    await world.run_until(datetime(2027, 3, 29, 12, 0, tzinfo=UTC), timedelta(minutes=10))
    local = ZoneInfo("Europe/Berlin")
    sent = [m["created_at"].astimezone(local) for m in await world.sent_messages(user)]
    on_28 = [d.strftime("%H:%M") for d in sent if d.day == 28]
    on_29 = [d.strftime("%H:%M") for d in sent if d.day == 29]
    assert on_28 == ["03:00"]  # 02:00, 02:20, 02:40 do not exist: one send at 03:00
    # The idempotency key is (end user, check-in, local date): once per local day.
    assert on_29 == ["02:00"]
    reasons = [(d["occurrence_key"], d["reason"]) for d in await world.decisions(user)]
    assert reasons == [
        ("2027-03-28", "scheduled"),
        ("2027-03-29", "scheduled"),
        ("2027-03-29", "already_sent"),
        ("2027-03-29", "already_sent"),
    ]


async def test_a_time_repeated_by_fall_back_fires_once(world: World) -> None:
    world.clock.set(datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(
        creator,
        {
            "checkIns": [{"name": "night", "cron": "30 2 * * *", "content": "template"}],
            "quietHours": NO_QUIET,
        },
    )
    user = await world.end_user(creator, program, "Europe/Berlin")
    await world.run_until(datetime(2026, 10, 26, 12, 0, tzinfo=UTC), timedelta(minutes=10))
    sent = [m["created_at"] for m in await world.sent_messages(user)]
    # 02:30 happens twice on the 25th (CEST, then CET): the first one only.
    assert sent == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


async def test_quiet_hours_defer_a_2230_check_in_to_0800(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(
        creator,
        {
            "checkIns": [{"name": "evening", "cron": "30 22 * * *", "content": "template"}],
            "quietHours": {"start": "21:00", "end": "08:00"},
        },
    )
    await world.wire_telegram(creator, program)
    user = await world.end_user(creator, program, "Europe/Berlin")
    chat = await world.on_telegram(creator, program, user)
    # 22:30 CEST = 20:30 UTC; 08:00 CEST = 06:00 UTC.
    await world.run_until(datetime(2026, 6, 1, 20, 30, tzinfo=UTC), timedelta(minutes=5))
    assert await world.sent_messages(user) == []
    (deferred,) = await world.decisions(user)
    assert (deferred["outcome"], deferred["reason"]) == ("deferred", "quiet_hours")
    await world.run_until(datetime(2026, 6, 2, 5, 59, tzinfo=UTC), timedelta(minutes=7))
    await world.deliver()
    assert await world.sent_messages(user) == []  # never inside the window
    assert world.received(chat) == []
    await world.run_until(datetime(2026, 6, 2, 6, 0, tzinfo=UTC), timedelta(minutes=1))
    await world.deliver()
    (message,) = await world.sent_messages(user)
    assert message["created_at"] == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    assert len(world.received(chat)) == 1
    outcomes = [
        (d["outcome"], d["reason"], d["occurrence_key"]) for d in await world.decisions(user)
    ]
    # The occurrence keeps its local date (June 1st) as its key.
    assert outcomes == [
        ("deferred", "quiet_hours", "2026-06-01"),
        ("sent", "scheduled", "2026-06-01"),
    ]


async def test_max_per_day_two_of_three_sent_one_recorded_as_skipped(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(
        creator,
        {
            "checkIns": [
                {"name": "a", "cron": "0 9 * * *", "content": "template"},
                {"name": "b", "cron": "0 12 * * *", "content": "template"},
                {"name": "c", "cron": "0 15 * * *", "content": "template"},
            ],
            "maxPerDay": 2,
        },
    )
    user = await world.end_user(creator, program, "UTC")
    await world.run_until(datetime(2026, 6, 1, 18, 0, tzinfo=UTC))
    decisions = [(d["item"], d["outcome"], d["reason"]) for d in await world.decisions(user)]
    assert decisions == [
        ("a", "sent", "scheduled"),
        ("b", "sent", "scheduled"),
        ("c", "skipped", "max_per_day"),
    ]
    assert len(await world.sent_messages(user)) == 2
    # The next local day starts a new count.
    await world.run_until(datetime(2026, 6, 2, 10, 0, tzinfo=UTC))
    assert len(await world.sent_messages(user)) == 3


async def test_check_ins_due_together_are_counted_and_paired_within_one_batch(
    world: World,
) -> None:
    """Three check-ins of one end user due at the same minute are handled in one batch,
    whose writes are flushed together: ``maxPerDay`` counts the sends gathered before it,
    and each sent decision names the message of its own check-in (two messages in one
    conversation are written in separate rounds)."""
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(
        creator,
        {
            "checkIns": [
                {"name": n, "cron": "0 9 * * *", "content": "template", "template": f"from {n}"}
                for n in ("a", "b", "c")
            ],
            "maxPerDay": 2,
            "quietHours": NO_QUIET,
        },
    )
    user = await world.end_user(creator, program, "UTC")
    await world.tick()  # planned
    world.clock.set(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    assert await world.tick() == 3  # one pass: the three in one batch
    decisions = await world.decisions(user)
    assert sorted((d["outcome"], d["reason"]) for d in decisions) == [
        ("sent", "scheduled"),
        ("sent", "scheduled"),
        ("skipped", "max_per_day"),
    ]
    bodies = {
        row["message_id"]: row["body"]
        for row in await world.rows(
            "SELECT message_id, body FROM messages WHERE end_user_id = $1", user
        )
    }
    sent = [d for d in decisions if d["outcome"] == "sent"]
    assert len(bodies) == 2
    assert {bodies[d["message_id"]] for d in sent} == {f"from {d['item']}" for d in sent}


async def test_editing_the_cron_changes_the_next_occurrence(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, {**DAILY_8, "quietHours": NO_QUIET})
    user = await world.end_user(creator, program, "UTC")
    await world.tick()
    (row,) = await world.rows(
        "SELECT occurrence FROM proactive_schedules WHERE end_user_id = $1", user
    )
    assert row["occurrence"] == datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    await world.update_proactive(
        creator,
        program,
        {
            "checkIns": [{"name": "morning", "cron": "15 7 * * *", "content": "template"}],
            "quietHours": NO_QUIET,
        },
    )
    await world.tick()
    (row,) = await world.rows(
        "SELECT occurrence FROM proactive_schedules WHERE end_user_id = $1", user
    )
    assert row["occurrence"] == datetime(2026, 6, 1, 7, 15, tzinfo=UTC)
    await world.run_until(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    sent = [m["created_at"] for m in await world.sent_messages(user)]
    assert sent == [datetime(2026, 6, 1, 7, 15, tzinfo=UTC)]
