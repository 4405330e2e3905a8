"""A poller's wake-ups (worker/wake.py): a NOTIFY on its channel sets the event at once; a
database it cannot reach leaves it without wake-ups (logged), never failing the poll."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
from pydantic import SecretStr

from coachops_runtime.kit.settings import Settings
from coachops_runtime.worker.wake import WakeUps
from tests.conftest import Database


async def test_a_notify_on_the_channel_sets_the_event(
    runtime_settings: Settings, database: Database
) -> None:
    wake_ups = WakeUps(runtime_settings, "coachops_test_wake", "tests")
    await wake_ups.listen()
    await wake_ups.listen()  # open already: kept, not opened twice
    conn = await asyncpg.connect(database.owner_dsn)
    try:
        await conn.execute("NOTIFY coachops_other_channel")
        await asyncio.sleep(0.2)
        assert not wake_ups.event.is_set()  # another channel's notice is not ours
        await conn.execute("NOTIFY coachops_test_wake")
        await asyncio.wait_for(wake_ups.event.wait(), timeout=5)
    finally:
        await conn.close()
        await wake_ups.close()


async def test_an_unreachable_database_means_no_wake_ups_and_a_warning(
    runtime_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = runtime_settings.model_copy(
        update={"database_url": SecretStr("postgresql://nobody:x@127.0.0.1:1/none")}
    )
    wake_ups = WakeUps(unreachable, "coachops_test_wake", "tests")
    with caplog.at_level(logging.WARNING, logger="coachops.worker"):
        await wake_ups.listen()
    assert "no wake-ups for tests" in caplog.text
    assert not wake_ups.event.is_set()
    await wake_ups.close()  # nothing to close: no error
