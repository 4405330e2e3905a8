"""PostgreSQL restarted while a worker generates: every accepted message still gets exactly
one AI reply (jobs in flight are claimed again once their lease runs out)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from coachops_devstack.stack import Stack
from coachops_runtime.kit.settings import Settings
from tests.ai.conftest import Coaching, StartWorker


async def _send_until_accepted(coaching: Coaching, me: dict[str, str], body: str) -> int:
    """The end user's client retries while the database is coming back."""
    async with asyncio.timeout(60):
        while True:
            response = await coaching.client.post(
                "/v1/me/messages", json={"body": body}, headers=me
            )
            if response.status_code == 202:
                return int(response.json()["message"]["message_id"])
            assert response.status_code == 503, response.text
            await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_postgres_restart_under_load_loses_no_message(
    coaching: Coaching, runtime_settings: Settings, start_worker: StartWorker, stack: Stack
) -> None:
    creator = await coaching.creator("aipgre")
    program = await coaching.program(creator, "sleep", coaching.spec(maxTokens=300))
    users = [await coaching.end_user(creator, program) for _ in range(5)]
    accepted = [
        await _send_until_accepted(coaching, users[n % 5], f"before {n}") for n in range(10)
    ]
    await start_worker(runtime_settings, "worker", lease_seconds=3, concurrency=4)

    async def some_done() -> bool:
        rows = await coaching.superuser("SELECT count(*) AS n FROM reply_jobs WHERE state = 'done'")
        return int(rows[0]["n"]) >= 2

    await coaching.wait_for(some_done)
    postgres = stack.postgres.process
    assert postgres is not None
    postgres.stop()
    await asyncio.sleep(1)
    postgres.start()

    async def accepts() -> bool:
        try:
            await coaching.superuser("SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return False
        return True

    await coaching.wait_for(accepts, seconds=30)
    accepted += [
        await _send_until_accepted(coaching, users[n % 5], f"after {n}") for n in range(10)
    ]

    async def all_done() -> bool:
        return await coaching.pending_jobs() == 0

    await coaching.wait_for(all_done, seconds=300)
    replies = await coaching.superuser(
        "SELECT reply_to, count(*) AS n FROM messages WHERE author = 'ai' GROUP BY reply_to"
    )
    assert {row["reply_to"]: row["n"] for row in replies} == dict.fromkeys(accepted, 1)
