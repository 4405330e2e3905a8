"""The worker process killed (SIGKILL), or PostgreSQL restarted, while deliveries are in
flight: afterwards every message reaches the provider exactly once, in order per
conversation."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
import pytest

from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit.settings import Settings
from tests.channels.conftest import Channeling
from tests.mail.conftest import worker_env


def _worker(
    settings: Settings, channels: ChannelSettings, tmp_path: Path, name: str
) -> ManagedProcess:
    env = worker_env(settings)
    key = channels.key
    assert key is not None
    env |= {
        "COACHOPS_CHANNEL_KEY": key.get_secret_value(),
        "COACHOPS_CHANNEL_TELEGRAM_API": channels.telegram_api,
        "COACHOPS_CHANNEL_SEND_TIMEOUT_SECONDS": "3",
        "COACHOPS_CHANNEL_RETRY_BASE_SECONDS": "0.05",
        "COACHOPS_CHANNEL_RETRY_MAX_SECONDS": "0.2",
        "COACHOPS_CHANNEL_CONCURRENCY": "4",
        "COACHOPS_WORKER_POLL_SECONDS": "0.1",
    }
    argv = [sys.executable, "-m", "coachops_runtime.worker"]
    return ManagedProcess(name, argv, tmp_path / f"{name}.log", env=env)


async def test_deliveries_survive_a_killed_worker(
    channeling: Channeling, runtime_settings: Settings, tmp_path: Path
) -> None:
    wired = await channeling.setup("telegram")
    senders = [channeling.sender(wired, n) for n in range(1, 4)]
    for sender in senders:
        await channeling.say(sender, "hello")
    # No AI here: the reply jobs would add deliveries of their own.
    await channeling.rows("DELETE FROM reply_jobs WHERE program_id = $1", wired.program)
    standins = channeling.standins
    standins.hang_seconds = 30
    # The first request is answered; every later one hangs, so at the kill nothing is
    # between "accepted by the provider" and "committed" (a message in that gap would be
    # sent again: delivery is at least once, see docs/channels.md).
    standins.fail("telegram", "ok", *["hang"] * 12)
    for n in range(4):
        for sender in senders:
            await channeling.creator_reply(sender, f"{sender.identity}-{n}")

    first = _worker(runtime_settings, channeling.settings, tmp_path, "worker-1")
    first.start()
    try:
        async with asyncio.timeout(60):
            # The first, then one hanging request per conversation (3 lanes busy).
            while standins.requests < 4:  # noqa: ASYNC110 - counts the stand-in's requests
                await asyncio.sleep(0.05)
        first.kill()
    finally:
        first.stop()
    assert [r.text for r in standins.received] == [f"{senders[0].identity}-0"]
    standins.fail_clear()

    second = _worker(runtime_settings, channeling.settings, tmp_path, "worker-2")
    second.start()
    try:
        async with asyncio.timeout(90):
            while True:
                (row,) = await channeling.rows("SELECT count(*) AS n FROM channel_due")
                if row["n"] == 0:
                    break
                await asyncio.sleep(0.1)
    finally:
        second.stop()
    for sender in senders:
        texts = [r.text for r in channeling.received(sender)]
        assert texts == [f"{sender.identity}-{n}" for n in range(4)], texts
    rows = await channeling.rows(
        "SELECT state FROM channel_outbox WHERE program_id = $1", wired.program
    )
    assert {r["state"] for r in rows} == {"sent"}
    assert len(rows) == 12


@pytest.mark.slow
async def test_deliveries_survive_a_postgres_restart(
    channeling: Channeling, runtime_settings: Settings, tmp_path: Path, stack: Stack
) -> None:
    wired = await channeling.setup("telegram")
    senders = [channeling.sender(wired, n) for n in range(1, 4)]
    for sender in senders:
        await channeling.say(sender, "hello")
    await channeling.rows("DELETE FROM reply_jobs WHERE program_id = $1", wired.program)
    standins = channeling.standins
    standins.hang_seconds = 30
    standins.fail("telegram", "ok", *["hang"] * 3)
    for n in range(3):
        for sender in senders:
            await channeling.creator_reply(sender, f"{sender.identity}-{n}")
    worker = _worker(runtime_settings, channeling.settings, tmp_path, "worker")
    worker.start()
    try:
        async with asyncio.timeout(60):
            while standins.requests < 4:  # noqa: ASYNC110 - counts the stand-in's requests
                await asyncio.sleep(0.05)
        postgres = stack.postgres.process
        assert postgres is not None
        postgres.stop()
        await asyncio.sleep(1)
        postgres.start()
        standins.fail_clear()
        async with asyncio.timeout(120):
            while True:
                try:
                    (row,) = await channeling.rows("SELECT count(*) AS n FROM channel_due")
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(0.2)
                    continue
                if row["n"] == 0:
                    break
                await asyncio.sleep(0.1)
    finally:
        worker.stop()
    for sender in senders:
        texts = [r.text for r in channeling.received(sender)]
        assert texts == [f"{sender.identity}-{n}" for n in range(3)], texts
