"""The request transaction: commit before a successful response, roll back otherwise, and
never pool a connection that still carries a transaction (or its tenant)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from coachops_runtime.kit.errors import Conflict, install_error_handlers
from coachops_runtime.kit.transaction import TransactionMiddleware, request_session
from tests.conftest import Database

SETUP = """
CREATE TABLE tx_probe (id int PRIMARY KEY);
CREATE FUNCTION tx_probe_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 13 THEN RAISE EXCEPTION 'refused at commit'; END IF;
  RETURN NULL;
END $$;
-- Deferred: the statement succeeds, the COMMIT fails.
CREATE CONSTRAINT TRIGGER tx_probe_at_commit AFTER INSERT ON tx_probe
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tx_probe_refuse();
GRANT SELECT, INSERT ON tx_probe TO coachops_runtime;
"""


@pytest.fixture
async def pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    owner = await asyncpg.connect(database.superuser_dsn)
    try:
        await owner.execute(SETUP)
    finally:
        await owner.close()
    # One connection: every request reuses the one the previous request released.
    created = await asyncpg.create_pool(database.runtime_dsn, min_size=1, max_size=1)
    assert created is not None
    yield created
    await created.close()


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(TransactionMiddleware)

    @app.post("/rows/{row}")
    async def write(row: int, request: Request, then: str = "ok") -> dict[str, int]:
        session = await request_session(request.scope, pool)
        await session.set_tenant(uuid.UUID(int=row))
        await session.execute("INSERT INTO tx_probe VALUES ($1)", row)
        if then == "conflict":
            raise Conflict("refused after the write")
        if then == "crash":
            raise RuntimeError("a bug after the write")
        return {"id": row}

    @app.get("/state")
    async def state(request: Request) -> dict[str, object]:
        session = await request_session(request.scope, pool)
        rows = await session.all("SELECT id FROM tx_probe ORDER BY id")
        tenant = await session.scalar("SELECT current_setting('coachops.tenant_id', true)")
        return {"ids": [r["id"] for r in rows], "tenant": tenant or ""}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def test_a_success_is_committed_before_the_response(client: httpx.AsyncClient) -> None:
    assert (await client.post("/rows/1")).status_code == 200
    state = (await client.get("/state")).json()
    assert state == {"ids": [1], "tenant": ""}  # committed, and the tenant did not carry over


async def test_an_error_response_rolls_back(client: httpx.AsyncClient) -> None:
    response = await client.post("/rows/2", params={"then": "conflict"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/state")).json()["ids"] == []


async def test_an_unhandled_exception_rolls_back_and_frees_the_connection(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    assert (await client.post("/rows/3", params={"then": "crash"})).status_code == 500
    # The pool has one connection: this request would hang if it had not come back.
    assert (await client.get("/state")).json() == {"ids": [], "tenant": ""}
    async with pool.acquire() as connection:
        assert not connection.is_in_transaction()


async def test_a_failed_commit_replaces_the_response_with_a_503(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/rows/13")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert "could not be committed" in response.json()["detail"]
    assert (await client.get("/state")).json()["ids"] == []
    assert (await client.post("/rows/4")).status_code == 200  # the connection still works
