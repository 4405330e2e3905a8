"""Stores that are down and archives that expire: the jobs wait and run again, fail
after their attempts, and an archive nobody downloaded is dropped at its expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.privacy.settings import PrivacySettings
from coachops_runtime.privacy.worker import PrivacyPoller
from tests.privacy.conftest import People, drain

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


@pytest.fixture
async def blind_poller(runtime_settings: Settings) -> AsyncIterator[PrivacyPoller]:
    """A worker whose Chroma cannot be reached."""
    settings = runtime_settings.model_copy(update={"chroma_url": UNREACHABLE})
    pool = await create_pool(settings.model_copy(update={"db_pool_size": 3}))
    worker = PrivacyPoller(
        settings, pool, PrivacySettings(retry_seconds=3600, max_attempts=2, timeout_seconds=2)
    )
    try:
        yield worker
    finally:
        await worker.close()
        await pool.close()


async def test_jobs_wait_for_chroma_and_then_finish(
    people: People, poller: PrivacyPoller, blind_poller: PrivacyPoller
) -> None:
    client = people.client
    creator = await people.creator("faults")
    person = await people.seed(creator, "p5", messages=1)
    user = f"/v1/end-users/{person.end_user_id}"
    export = (await client.post(f"{user}/exports", headers=creator.headers)).json()
    status_url = f"{user}/exports/{export['export_id']}"

    # Chroma down: the export is put off, then fails after its attempts.
    assert await blind_poller.poll() == 1
    waiting = (await client.get(status_url, headers=creator.headers)).json()
    assert waiting["state"] == "running"
    assert "Chroma" in waiting["error"]
    assert await blind_poller.poll() == 0  # not due again for an hour
    await people.superuser("UPDATE export_jobs SET next_attempt_at = now()")
    assert await blind_poller.poll() == 1
    failed = (await client.get(status_url, headers=creator.headers)).json()
    assert failed["state"] == "failed"

    # Erasure with Chroma down: the steps before it are done and stay done.
    response = await client.delete(user, headers=creator.headers)
    erasure_url = response.headers["Location"]
    assert await blind_poller.poll() == 1
    status = (await client.get(erasure_url, headers=creator.headers)).json()
    assert status["state"] == "running"
    assert status["steps"]["redis"]["done"]
    assert "chroma" not in status["steps"]
    assert "Chroma" in status["error"]
    await people.superuser("UPDATE erasure_jobs SET next_attempt_at = now()")
    assert await drain(poller) == 1
    done = (await client.get(erasure_url, headers=creator.headers)).json()
    assert done["state"] == "done"
    assert done["steps"]["chroma"]["removed"] == 1


async def test_an_archive_nobody_downloads_expires(people: People, poller: PrivacyPoller) -> None:
    client = people.client
    creator = await people.creator("expiry")
    person = await people.seed(creator, "q6", messages=1)
    started = await client.post("/v1/me/exports", headers=person.me)
    await drain(poller)
    ready = (await client.get(started.headers["Location"], headers=person.me)).json()
    assert ready["state"] == "ready"
    # Its expiry comes (the worker claims a ready archive then).
    await people.superuser("UPDATE export_jobs SET expires_at = now(), next_attempt_at = now()")
    assert await drain(poller) == 1
    rows = await people.superuser("SELECT state, archive FROM export_jobs")
    assert [(r["state"], r["archive"]) for r in rows] == [("expired", None)]
    expired = (await client.get(started.headers["Location"], headers=person.me)).json()
    assert expired["state"] == "expired"
    assert expired["download_url"] is None
    # The old link is dead; a new GET /v1/me/export starts a new archive.
    assert (await client.get(urlsplit(ready["download_url"]).path)).status_code == 404
    fresh = await client.get("/v1/me/export", headers=person.me)
    assert fresh.status_code == 202
    assert fresh.json()["export_id"] != ready["export_id"]


async def test_rows_another_transaction_updates_meanwhile_are_erased_too(
    people: People, poller: PrivacyPoller
) -> None:
    """The e-mail worker updates an e-mail (a failed try) while the erasure deletes it:
    the DELETE's recheck passes the row's new version over, and the step must not end
    until it is gone."""
    client = people.client
    creator = await people.creator("racing")
    person = await people.seed(creator, "r7", messages=1)
    response = await client.delete(f"/v1/end-users/{person.end_user_id}", headers=creator.headers)
    mailer = await asyncpg.connect(people.database.superuser_dsn)
    try:
        updating = mailer.transaction()
        await updating.start()
        changed = await mailer.execute(
            "UPDATE email_outbox SET attempts = attempts + 1 WHERE to_address = $1", person.email
        )
        assert changed == "UPDATE 2"
        erasing = asyncio.create_task(drain(poller))
        async with asyncio.timeout(30):
            while not await people.superuser(  # noqa: ASYNC110 - waits for the lock wait
                "SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'DELETE FROM email_outbox%'"
            ):
                await asyncio.sleep(0.05)
        await updating.commit()
        assert await erasing == 1
    finally:
        await mailer.close()
    left = await people.superuser(
        "SELECT count(*) AS n FROM email_outbox WHERE to_address = $1", person.email
    )
    assert left[0]["n"] == 0
    status = await client.get(response.headers["Location"], headers=creator.headers)
    assert status.json()["steps"]["email_outbox"]["removed"] == 2
