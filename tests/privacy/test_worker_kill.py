"""The worker process killed (SIGKILL) in the middle of an erasure: a new worker resumes
it from its recorded steps, removes every row once (no batch counted twice) and the scan
finds nothing, not in the killed worker's log either."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_runtime.kit.settings import Settings
from coachops_runtime.privacy.scan import scan
from coachops_runtime.privacy.worker import PrivacyPoller
from tests.mail.conftest import worker_env
from tests.privacy.conftest import People, drain
from tests.privacy.test_erasure import needles_of


def _worker(
    settings: Settings, stack: Stack, tmp_path: Path, name: str, pause: float
) -> ManagedProcess:
    env = worker_env(settings) | {
        "COACHOPS_CHROMA_URL": stack.chroma.url,
        "COACHOPS_WORKER_POLL_SECONDS": "0.1",
        "COACHOPS_PRIVACY_BATCH_ROWS": "20",
        "COACHOPS_PRIVACY_BATCH_PAUSE_SECONDS": str(pause),
    }
    argv = [sys.executable, "-m", "coachops_runtime.worker"]
    return ManagedProcess(name, argv, tmp_path / f"{name}.log", env=env)


async def _steps(people: People, erasure_id: str) -> dict[str, dict[str, object]]:
    rows = await people.superuser(
        "SELECT steps FROM erasure_jobs WHERE erasure_id = $1::uuid", erasure_id
    )
    return {} if not rows else dict(json.loads(rows[0]["steps"]))


async def test_erasure_resumes_after_the_worker_is_killed(
    people: People,
    poller: PrivacyPoller,
    runtime_settings: Settings,
    stack: Stack,
    tmp_path: Path,
) -> None:
    creator = await people.creator("killed")
    person = await people.seed(creator, "m3", messages=120)
    await people.seed(creator, "n4", messages=2)
    ids, texts = await needles_of(people, person)
    response = await people.client.delete(
        f"/v1/end-users/{person.end_user_id}", headers=creator.headers
    )
    assert response.status_code == 202
    erasure_id = response.json()["erasure_id"]

    first = _worker(runtime_settings, stack, tmp_path, "worker-1", pause=0.2)
    first.start()
    try:
        async with asyncio.timeout(60):
            while True:
                step = (await _steps(people, erasure_id)).get("messages") or {}
                if step.get("removed", 0) and not step.get("done"):
                    break
                await asyncio.sleep(0.02)
        first.kill()
    finally:
        first.stop()
    halfway = await _steps(people, erasure_id)
    assert not halfway["messages"]["done"]
    assert "end_users" not in halfway
    (left,) = await people.superuser(
        "SELECT count(*) AS n FROM messages WHERE end_user_id = $1", person.end_user_id
    )
    assert 0 < left["n"] < len(person.message_ids)

    # Another worker (here the poller in this process) claims it as soon as PostgreSQL
    # has seen the dead worker's connection close, which ends its claiming transaction.
    async with asyncio.timeout(30):
        while await drain(poller) == 0:  # noqa: ASYNC110 - the claim is the event
            await asyncio.sleep(0.05)
    assert await _steps(people, erasure_id) == {}
    (tombstone,) = await people.superuser(
        "SELECT removed FROM erasure_tombstones WHERE erasure_id = $1::uuid", erasure_id
    )
    removed = json.loads(tombstone["removed"])
    assert removed["messages"] == len(person.message_ids)  # every batch counted once
    assert removed["end_users"] == 1
    report = await scan(
        ids,
        texts,
        database_url=people.database.superuser_dsn,
        redis_url=stack.redis.url,
        chroma_url=stack.chroma.url,
        logs=[tmp_path / "worker-1.log"],
    )
    assert report.traces == [], report.traces
    assert report.searched["log"] == 1
