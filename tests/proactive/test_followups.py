"""Inactivity nudges (one per silence), goal follow-ups (the day before and on the day),
and response tracking: analytics count the engine's check-ins and the replies within 24 h."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from tests.proactive.conftest import World
from tests.runtime.conftest import Creator

NO_QUIET = {"start": "00:00", "end": "00:00"}


async def _inbound(world: World, creator: Creator, program: uuid.UUID, user: uuid.UUID) -> None:
    """A message from the end user at the clock's time (stored as the API stores one)."""
    await world.tenants.owner(
        creator.creator_id,
        "WITH v AS (INSERT INTO conversations (creator_id, program_id, end_user_id)"
        " VALUES ($1, $2, $3) ON CONFLICT (program_id, end_user_id, channel)"
        " DO UPDATE SET channel = EXCLUDED.channel RETURNING conversation_id)"
        " INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
        " direction, author, body, created_at)"
        " SELECT $1, conversation_id, $2, $3, 'in', 'end_user', 'hi', $4 FROM v",
        creator.creator_id,
        program,
        user,
        world.clock.now(),
    )


async def test_one_nudge_per_silence(world: World) -> None:
    # The enrolment is stamped by PostgreSQL: start the clock at the real time.
    world.clock.set(datetime.now(UTC).replace(microsecond=0))
    creator = await world.creator()
    program = await world.program(
        creator, {"inactivityNudgeHours": 24, "quietHours": NO_QUIET, "maxPerDay": 5}
    )
    user = await world.end_user(creator, program, "Europe/Berlin", name="Kim")
    world.clock.advance(timedelta(hours=1))
    await _inbound(world, creator, program, user)
    silence = world.clock.now()
    await world.run_until(silence + timedelta(hours=23), timedelta(hours=1))
    assert await world.sent_messages(user) == []
    await world.run_until(silence + timedelta(days=4), timedelta(hours=1))
    (nudge,) = await world.sent_messages(user)
    assert nudge["kind"] == "nudge"
    assert nudge["body"] == "Hi Kim, it has been a while. How are you doing?"
    assert silence + timedelta(hours=24) <= nudge["created_at"] <= silence + timedelta(hours=25)

    await _inbound(world, creator, program, user)  # a new silence starts
    again = world.clock.now()
    await world.run_until(again + timedelta(days=2), timedelta(hours=1))
    sent = await world.sent_messages(user)
    assert len(sent) == 2
    assert again + timedelta(hours=24) <= sent[1]["created_at"] <= again + timedelta(hours=25)
    keys = [d["occurrence_key"] for d in await world.decisions(user)]
    assert keys == [silence.isoformat(), again.isoformat()]
    # This silence had its nudge: nothing to send now.
    (schedule,) = (
        await world.client.get("/v1/proactive/schedules", headers=creator.headers)
    ).json()
    assert schedule["kind"] == "nudge"
    assert schedule["occurrence"] is None
    response = await world.client.post(
        f"/v1/proactive/schedules/{schedule['schedule_id']}/send-now", headers=creator.headers
    )
    assert response.status_code == 409, response.text


async def test_goal_follow_ups_the_day_before_and_on_the_day(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, {"quietHours": NO_QUIET})
    user = await world.end_user(creator, program, "Europe/Berlin", name="Ana")
    for title, close in (("Run 5k", False), ("Read a book", True)):
        goal = await world.client.post(
            f"/v1/end-users/{user}/goals",
            json={"program_id": str(program), "title": title, "target_date": "2026-06-03"},
            headers=creator.headers,
        )
        assert goal.status_code == 201, goal.text
        if close:
            closed = await world.client.post(
                f"/v1/end-users/{user}/goals/{goal.json()['goal_id']}/close",
                json={"status": "abandoned"},
                headers=creator.headers,
            )
            assert closed.status_code == 200, closed.text
    await world.run_until(datetime(2026, 6, 4, 12, 0, tzinfo=UTC), timedelta(minutes=30))
    sent = await world.sent_messages(user)
    # 10:00 in Berlin (CEST) is 08:00 UTC.
    assert [m["created_at"] for m in sent] == [
        datetime(2026, 6, 2, 8, 0, tzinfo=UTC),
        datetime(2026, 6, 3, 8, 0, tzinfo=UTC),
    ]
    assert "Run 5k" in sent[0]["body"]
    assert "due tomorrow" in sent[0]["body"]
    assert "due today" in sent[1]["body"]
    keys = [d["occurrence_key"] for d in await world.decisions(user)]
    assert keys == [f"{date(2026, 6, 3)}:before", f"{date(2026, 6, 3)}:due"]
    # Both follow-ups done, the abandoned goal never scheduled: nothing left.
    assert await world.rows("SELECT 1 FROM proactive_schedules WHERE end_user_id = $1", user) == []


async def test_analytics_count_sent_check_ins_and_replies_within_24_hours(world: World) -> None:
    # Check-ins two hours ago by the engine's clock; replies now, stored by the API.
    world.clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
    creator = await world.creator()
    program = await world.program(
        creator,
        {
            "checkIns": [{"name": "daily", "cron": "0 9 * * *", "content": "template"}],
            "quietHours": NO_QUIET,
        },
    )
    answering = await world.end_user(creator, program)
    silent = await world.end_user(creator, program)
    await world.tick()
    listed = await world.client.get("/v1/proactive/schedules", headers=creator.headers)
    for schedule in listed.json():
        response = await world.client.post(
            f"/v1/proactive/schedules/{schedule['schedule_id']}/send-now",
            headers=creator.headers,
        )
        assert response.status_code == 202
    await world.tick()
    token = await world.client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": str(answering), "program_id": str(program)},
        headers=creator.headers,
    )
    assert token.status_code == 201, token.text
    me = {"Authorization": f"Bearer {token.json()['access_token']}"}
    reply = await world.client.post("/v1/me/messages", json={"body": "slept well"}, headers=me)
    assert reply.status_code == 202, reply.text
    assert len(await world.sent_messages(silent)) == 1

    day = world.clock.now().date()
    response = await world.client.get(
        "/v1/analytics/daily",
        params={"program_id": str(program), "from": str(day), "to": str(day + timedelta(1))},
        headers=creator.headers,
    )
    assert response.status_code == 200, response.text
    rows = response.json()
    assert sum(r["check_ins_sent"] for r in rows) == 2
    assert sum(r["check_ins_answered"] for r in rows) == 1
