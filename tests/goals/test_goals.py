"""Goals through the API, from the end user's side and the creator's, and for the prompt."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from coachops_runtime.goals.repository import active_goals
from coachops_runtime.kit.db import Session
from tests.conftest import Database
from tests.runtime.conftest import Creator, Tenants


@pytest.fixture(autouse=True)
def paced(client: httpx.AsyncClient) -> None:
    """End users may send 5 requests a second; these tests stay under that."""

    async def pause(request: httpx.Request) -> None:
        await asyncio.sleep(0.22)

    client.event_hooks["request"].append(pause)


async def _end_user(
    client: httpx.AsyncClient, creator: Creator, programs: list[uuid.UUID], email: str
) -> tuple[str, dict[str, str]]:
    user = await client.post(
        "/v1/end-users",
        json={"email": email, "program_ids": [str(p) for p in programs]},
        headers=creator.headers,
    )
    assert user.status_code == 201, user.text
    end_user = user.json()["end_user_id"]
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user, "program_id": str(programs[0])},
        headers=creator.headers,
    )
    assert token.status_code in (200, 201), token.text
    return end_user, {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_end_user_and_creator_manage_goals(
    client: httpx.AsyncClient, tenants: Tenants, database: Database
) -> None:
    creator = await tenants.signed_up("goalie")
    program = await tenants.add_program(creator, "run")
    other_program = await tenants.add_program(creator, "lift")
    end_user, me = await _end_user(client, creator, [program, other_program], "g@example.com")

    created = await client.post(
        "/v1/me/goals",
        json={"title": "Run 5 km", "details": "without stopping", "target_date": "2027-03-01"},
        headers=me,
    )
    assert created.status_code == 201, created.text
    goal = created.json()
    assert (goal["status"], goal["created_by"]) == ("active", "end_user")
    assert (goal["program_id"], goal["target_date"]) == (str(program), "2027-03-01")

    # The creator sets one in the other program; the end user's token is for `program`.
    theirs = await client.post(
        f"/v1/end-users/{end_user}/goals",
        json={"title": "Squat 80 kg", "program_id": str(other_program)},
        headers=creator.headers,
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["created_by"] == "creator"
    mine = await client.get("/v1/me/goals", headers=me)
    assert [g["title"] for g in mine.json()["items"]] == ["Run 5 km"]
    # ... so the end user cannot change it either.
    foreign = await client.patch(
        f"/v1/me/goals/{theirs.json()['goal_id']}", json={"title": "x"}, headers=me
    )
    assert foreign.status_code == 404
    third = await client.post(
        f"/v1/end-users/{end_user}/goals",
        json={"title": "Sleep 8 h", "program_id": str(program)},
        headers=creator.headers,
    )
    assert third.status_code == 201

    # Update: the target date can be cleared; title cannot be null.
    cleared = await client.patch(
        f"/v1/me/goals/{goal['goal_id']}", json={"target_date": None}, headers=me
    )
    assert cleared.status_code == 200
    assert cleared.json()["target_date"] is None
    assert cleared.json()["details"] == "without stopping"
    refused = await client.patch(
        f"/v1/me/goals/{goal['goal_id']}", json={"title": None}, headers=me
    )
    assert refused.status_code == 422
    empty = await client.post("/v1/me/goals", json={"title": ""}, headers=me)
    assert empty.status_code == 422

    # The prompt sees the active goals of the program, soonest target first.
    dated = await client.patch(
        f"/v1/end-users/{end_user}/goals/{third.json()['goal_id']}",
        json={"target_date": "2026-12-31"},
        headers=creator.headers,
    )
    assert dated.status_code == 200, dated.text
    assert [g.title for g in await _active(database, creator, end_user, program)] == [
        "Sleep 8 h",
        "Run 5 km",
    ]

    # Close: once; a closed goal does not change and leaves the prompt.
    closed = await client.post(
        f"/v1/me/goals/{goal['goal_id']}/close", json={"status": "achieved"}, headers=me
    )
    assert closed.status_code == 200
    assert closed.json()["status"] == "achieved"
    assert closed.json()["closed_at"]
    again = await client.post(
        f"/v1/me/goals/{goal['goal_id']}/close", json={"status": "abandoned"}, headers=me
    )
    assert again.status_code == 409
    frozen = await client.patch(f"/v1/me/goals/{goal['goal_id']}", json={"title": "y"}, headers=me)
    assert frozen.status_code == 409
    bad = await client.post(
        f"/v1/me/goals/{third.json()['goal_id']}/close", json={"status": "active"}, headers=me
    )
    assert bad.status_code == 422
    assert [g.title for g in await _active(database, creator, end_user, program)] == ["Sleep 8 h"]

    # The creator's view: all programs, filters by program and status.
    every = await client.get(f"/v1/end-users/{end_user}/goals", headers=creator.headers)
    assert {g["title"] for g in every.json()["items"]} == {"Run 5 km", "Squat 80 kg", "Sleep 8 h"}
    done = await client.get(
        f"/v1/end-users/{end_user}/goals?status=achieved", headers=creator.headers
    )
    assert [g["title"] for g in done.json()["items"]] == ["Run 5 km"]
    lifting = await client.get(
        f"/v1/end-users/{end_user}/goals?program_id={other_program}", headers=creator.headers
    )
    assert [g["title"] for g in lifting.json()["items"]] == ["Squat 80 kg"]


async def _active(
    database: Database, creator: Creator, end_user: str, program: uuid.UUID
) -> list[Any]:
    connection = await asyncpg.connect(database.runtime_dsn)
    try:
        session = Session(connection)
        await session.set_tenant(creator.creator_id)
        goals = await active_goals(session, uuid.UUID(end_user), program)
        await session.finish(commit=False)
        return goals
    finally:
        await connection.close()


async def test_goals_page_with_a_cursor(client: httpx.AsyncClient, tenants: Tenants) -> None:
    creator = await tenants.signed_up("pager")
    program = await tenants.add_program(creator, "p")
    _, me = await _end_user(client, creator, [program], "p@example.com")
    for n in range(5):
        assert (await client.post("/v1/me/goals", json={"title": f"g{n}"}, headers=me)).is_success
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/v1/me/goals{query}", headers=me)).json()
        seen += [g["title"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"g{n}" for n in range(5)]
    bad = await client.get("/v1/me/goals?cursor=nonsense", headers=me)
    assert bad.status_code == 400


async def test_goals_of_one_end_user_are_not_anothers(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("twins")
    program = await tenants.add_program(creator, "p")
    _, first = await _end_user(client, creator, [program], "a@example.com")
    _, second = await _end_user(client, creator, [program], "b@example.com")
    goal = (await client.post("/v1/me/goals", json={"title": "private"}, headers=first)).json()
    assert (await client.get("/v1/me/goals", headers=second)).json()["items"] == []
    for method, path, body in (
        ("PATCH", f"/v1/me/goals/{goal['goal_id']}", {"title": "mine now"}),
        ("POST", f"/v1/me/goals/{goal['goal_id']}/close", {"status": "abandoned"}),
    ):
        response = await client.request(method, path, json=body, headers=second)
        assert response.status_code == 404, (path, response.text)
    # Not enrolled in a program, or no such end user: 404 for the creator too.
    lone = await tenants.add_program(creator, "lone")
    end_user = goal["end_user_id"]
    for path, body in (
        (f"/v1/end-users/{end_user}/goals", {"title": "t", "program_id": str(lone)}),
        (f"/v1/end-users/{uuid.uuid4()}/goals", {"title": "t", "program_id": str(program)}),
    ):
        response = await client.post(path, json=body, headers=creator.headers)
        assert response.status_code == 404, response.text
    listing = await client.get(f"/v1/end-users/{uuid.uuid4()}/goals", headers=creator.headers)
    assert listing.status_code == 404
