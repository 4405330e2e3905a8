"""Creator API: upcoming proactive messages, skip, send now, decisions; tenant isolation
on every endpoint; bad input answered 4xx."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from tests.proactive.conftest import World
from tests.runtime.conftest import Creator

NO_QUIET = {"start": "00:00", "end": "00:00"}
DAILY_9 = {
    "checkIns": [{"name": "morning", "cron": "0 9 * * *", "content": "template"}],
    "quietHours": NO_QUIET,
}


async def test_list_skip_send_now_and_decisions(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, DAILY_9)
    user = await world.end_user(creator, program, "Asia/Tokyo")
    listed = await world.client.get("/v1/proactive/schedules", headers=creator.headers)
    assert listed.status_code == 200, listed.text
    (unplanned,) = listed.json()
    assert unplanned["occurrence"] is None  # enrolled, not yet planned
    await world.tick()

    listed = await world.client.get(
        "/v1/proactive/schedules",
        params={"program_id": str(program), "end_user_id": str(user)},
        headers=creator.headers,
    )
    (schedule,) = listed.json()
    assert schedule["kind"] == "check_in"
    assert schedule["item"] == "morning"
    occurrence = datetime.fromisoformat(schedule["occurrence"])
    assert occurrence == datetime(2026, 6, 2, 0, 0, tzinfo=UTC)
    assert schedule["local_time"] == "2026-06-02T09:00:00+09:00"
    sid = schedule["schedule_id"]

    skipped = await world.client.post(
        f"/v1/proactive/schedules/{sid}/skip", headers=creator.headers
    )
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["local_time"] == "2026-06-03T09:00:00+09:00"

    now = await world.client.post(
        f"/v1/proactive/schedules/{sid}/send-now", headers=creator.headers
    )
    assert now.status_code == 202, now.text
    assert now.json()["send_now"] is True
    await world.tick()  # 15:00 in Tokyo: sent at once
    (message,) = await world.sent_messages(user)
    assert message["created_at"] == world.clock.now()

    decisions = await world.client.get(
        "/v1/proactive/decisions", params={"end_user_id": str(user)}, headers=creator.headers
    )
    assert decisions.status_code == 200, decisions.text
    got = [(d["outcome"], d["reason"], d["occurrence_key"]) for d in decisions.json()]
    assert got == [
        ("sent", "sent_now", "2026-06-03"),
        ("skipped", "creator_skipped", "2026-06-02"),
    ]
    only_sent = await world.client.get(
        "/v1/proactive/decisions", params={"outcome": "sent"}, headers=creator.headers
    )
    assert [d["reason"] for d in only_sent.json()] == ["sent_now"]
    listed = await world.client.get("/v1/proactive/schedules", headers=creator.headers)
    assert listed.json()[0]["local_time"] == "2026-06-04T09:00:00+09:00"

    # A check-in removed from the program: nothing left to skip or send.
    await world.update_proactive(creator, program, {"checkIns": []})
    for action in ("skip", "send-now"):
        gone = await world.client.post(
            f"/v1/proactive/schedules/{sid}/{action}", headers=creator.headers
        )
        assert gone.status_code == 409, gone.text
        assert gone.headers["content-type"].startswith("application/problem+json")


async def test_another_creator_sees_and_touches_nothing(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    owner = await world.creator()
    program = await world.program(owner, DAILY_9)
    user = await world.end_user(owner, program)
    await world.tick()
    await world.client.post(
        f"/v1/proactive/schedules/{(await _first(world, owner))}/skip", headers=owner.headers
    )
    stranger = await world.creator()
    for params in ({}, {"program_id": str(program)}, {"end_user_id": str(user)}):
        for path in ("/v1/proactive/schedules", "/v1/proactive/decisions"):
            response = await world.client.get(path, params=params, headers=stranger.headers)
            assert response.status_code == 200, response.text
            assert response.json() == []
    sid = await _first(world, owner)
    for action in ("skip", "send-now"):
        response = await world.client.post(
            f"/v1/proactive/schedules/{sid}/{action}", headers=stranger.headers
        )
        assert response.status_code == 404, response.text
    # Nothing changed for the owner.
    (schedule,) = (await world.client.get("/v1/proactive/schedules", headers=owner.headers)).json()
    assert schedule["send_now"] is False
    assert (
        len((await world.client.get("/v1/proactive/decisions", headers=owner.headers)).json()) == 1
    )
    # Without a token: 401.
    assert (await world.client.get("/v1/proactive/schedules")).status_code == 401


async def _first(world: World, creator: Creator) -> int:
    listed = await world.client.get("/v1/proactive/schedules", headers=creator.headers)
    return int(listed.json()[0]["schedule_id"])


async def test_bad_input_is_a_4xx_problem(world: World) -> None:
    creator = await world.creator()
    for method, path, params in (
        ("POST", "/v1/proactive/schedules/0/skip", {}),
        ("POST", "/v1/proactive/schedules/99999999999999999999/send-now", {}),
        ("POST", "/v1/proactive/schedules/abc/skip", {}),
        ("GET", "/v1/proactive/schedules", {"program_id": "not-a-uuid"}),
        ("GET", "/v1/proactive/schedules", {"limit": "0"}),
        ("GET", "/v1/proactive/decisions", {"outcome": "maybe"}),
        ("GET", "/v1/proactive/decisions", {"limit": "501"}),
    ):
        response = await world.client.request(method, path, params=params, headers=creator.headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    missing = await world.client.post(
        "/v1/proactive/schedules/123456/skip", headers=creator.headers
    )
    assert missing.status_code == 404


async def test_the_stores_are_walled_per_tenant(world: World) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    a, b = await world.creator(), await world.creator()
    for creator in (a, b):
        program = await world.program(creator, DAILY_9)
        await world.end_user(creator, program)
    await world.run_until(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    conn = await asyncpg.connect(world.database.runtime_dsn)
    try:
        for table in ("proactive_schedules", "proactive_decisions"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0  # no tenant bound
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('coachops.tenant_id', $1, true)", str(a.creator_id)
                )
                rows = await conn.fetch(f"SELECT creator_id FROM {table}")
                assert {r["creator_id"] for r in rows} == {a.creator_id}
                # Nothing of B's can be changed from A's context.
                changed = await conn.execute(
                    f"UPDATE {table} SET item = item WHERE creator_id = $1", b.creator_id
                )
                assert changed == "UPDATE 0"
        # The cross-tenant queue is the owner's: the runtime reaches it only through the claim.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM proactive_due")
    finally:
        await conn.close()
