"""An end user's time zone may be unset (null: the program's applies): created without
one, shown as null, cleared by a PATCH with null, kept by a PATCH without it; an unknown
zone is a 422 problem; another tenant can neither see nor clear it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.runtime.conftest import Creator, Tenants


async def _create(client: httpx.AsyncClient, creator: Creator, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/end-users", json=fields, headers=creator.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _stored_zone(tenants: Tenants, creator: Creator, end_user: str) -> Any:
    (row,) = await tenants.owner(
        creator.creator_id, "SELECT time_zone FROM end_users WHERE end_user_id = $1::uuid", end_user
    )
    return row["time_zone"]


async def test_a_zone_is_unset_until_given_and_cleared_by_null(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("tzone")
    program = await tenants.add_program(creator, "sleep")
    unset = await _create(client, creator, program_ids=[str(program)])
    assert unset["time_zone"] is None
    assert await _stored_zone(tenants, creator, unset["end_user_id"]) is None
    assert (await _create(client, creator, time_zone=None))["time_zone"] is None
    tokyo = await _create(client, creator, time_zone="Asia/Tokyo", display_name="Kei")
    assert tokyo["time_zone"] == "Asia/Tokyo"

    listed = await client.get("/v1/end-users", headers=creator.headers)
    zones = {u["end_user_id"]: u["time_zone"] for u in listed.json()["items"]}
    assert (zones[unset["end_user_id"]], zones[tokyo["end_user_id"]]) == (None, "Asia/Tokyo")
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": unset["end_user_id"], "program_id": str(program)},
        headers=creator.headers,
    )
    me = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["time_zone"] is None

    url = f"/v1/end-users/{tokyo['end_user_id']}"
    renamed = await client.patch(url, json={"display_name": "Kei S."}, headers=creator.headers)
    assert renamed.json()["time_zone"] == "Asia/Tokyo"  # left out: kept
    cleared = await client.patch(url, json={"time_zone": None}, headers=creator.headers)
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["time_zone"], cleared.json()["display_name"]) == (None, "Kei S.")
    assert (await client.get(url, headers=creator.headers)).json()["time_zone"] is None
    assert await _stored_zone(tenants, creator, tokyo["end_user_id"]) is None
    again = await client.patch(url, json={"time_zone": "Europe/Berlin"}, headers=creator.headers)
    assert again.json()["time_zone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("case", "zone"),
    list(enumerate(["Mars/Olympus", "../../etc/passwd", "", "Europe/", 5])),
)
async def test_an_unknown_zone_is_a_422_problem(
    client: httpx.AsyncClient, tenants: Tenants, case: int, zone: Any
) -> None:
    creator = await tenants.signed_up(f"tzbad{case}")
    created = await client.post("/v1/end-users", json={"time_zone": zone}, headers=creator.headers)
    assert created.status_code == 422, created.text
    assert created.headers["content-type"] == "application/problem+json"
    user = await _create(client, creator, time_zone="Asia/Tokyo")
    patched = await client.patch(
        f"/v1/end-users/{user['end_user_id']}", json={"time_zone": zone}, headers=creator.headers
    )
    assert patched.status_code == 422, patched.text
    assert patched.headers["content-type"] == "application/problem+json"
    assert await _stored_zone(tenants, creator, user["end_user_id"]) == "Asia/Tokyo"


async def test_another_tenant_can_neither_see_nor_clear_a_zone(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    owner = await tenants.signed_up("tzowner")
    other = await tenants.signed_up("tzother")
    user = await _create(client, owner, time_zone="Asia/Tokyo")
    url = f"/v1/end-users/{user['end_user_id']}"
    for response in (
        await client.patch(url, json={"time_zone": None}, headers=other.headers),
        await client.get(url, headers=other.headers),
    ):
        assert response.status_code == 404, response.text
        assert "Asia/Tokyo" not in response.text
    listed = await client.get("/v1/end-users", headers=other.headers)
    assert listed.json()["items"] == []
    assert await _stored_zone(tenants, owner, user["end_user_id"]) == "Asia/Tokyo"
