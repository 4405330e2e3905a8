"""Three scheduler processes (``python -m coachops_runtime.proactive``) on one scaled clock
live through a simulated week (a DST change in it) for 500 end users, while each of them
is SIGKILLed at random moments and restarted at once: every end user gets exactly one
check-in per local day, counted from what the Telegram stand-in received."""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from coachops_devstack.process import ManagedProcess
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.clock import ScaledClock
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from tests.mail.conftest import worker_env
from tests.proactive.conftest import World

ZONES = ["Asia/Tokyo", "Europe/Berlin", "America/New_York"]
USERS_PER_CREATOR = 100
CREATORS = 5
SIMULATED = timedelta(days=7)
REAL_SECONDS = 35.0
SPEED = SIMULATED.total_seconds() / REAL_SECONDS
KILLS_PER_REPLICA = 6
START = datetime(2026, 10, 23, 23, 30, tzinfo=UTC)  # Berlin leaves summer time on the 25th


async def _populate(world: World) -> dict[uuid.UUID, tuple[str, ZoneInfo]]:
    """Creators, each with a program and its end users on Telegram, written as the
    operator and the webhook would (in bulk, to keep the test short)."""
    users: dict[uuid.UUID, tuple[str, ZoneInfo]] = {}
    chat = 900_000
    for c in range(CREATORS):
        creator = await world.tenants.provision(f"rep{c}{uuid.uuid4().hex[:6]}")
        program = await world.program(
            creator,
            {
                "checkIns": [{"name": "morning", "cron": "0 8 * * *", "content": "template"}],
                "quietHours": {"start": "00:00", "end": "00:00"},
            },
        )
        await world.wire_telegram(creator, program)
        zones = [ZONES[n % len(ZONES)] for n in range(USERS_PER_CREATOR)]
        chats = [str(chat + n) for n in range(USERS_PER_CREATOR)]
        chat += USERS_PER_CREATOR
        conn = await asyncpg.connect(world.database.owner_dsn)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('coachops.tenant_id', $1, true)", str(creator.creator_id)
                )
                created = await conn.fetch(
                    "INSERT INTO end_users (creator_id, display_name, time_zone, status)"
                    " SELECT $1, 'user' || n, z, 'active'"
                    " FROM unnest($2::text[]) WITH ORDINALITY AS t(z, n)"
                    " RETURNING end_user_id, time_zone",
                    creator.creator_id,
                    zones,
                )
                ids = [row["end_user_id"] for row in created]
                await conn.execute(
                    "INSERT INTO enrolments (creator_id, end_user_id, program_id)"
                    " SELECT $1, u, $2 FROM unnest($3::uuid[]) AS u",
                    creator.creator_id,
                    program,
                    ids,
                )
                await conn.execute(
                    "INSERT INTO channel_identities (creator_id, program_id, channel,"
                    " external_id, end_user_id, address, last_inbound_at)"
                    " SELECT $1, $2, 'telegram', c, u, c, $5"
                    " FROM unnest($3::text[], $4::uuid[]) AS t(c, u)",
                    creator.creator_id,
                    program,
                    chats,
                    ids,
                    START,
                )
                for row, external in zip(created, chats, strict=True):
                    users[row["end_user_id"]] = (external, ZoneInfo(row["time_zone"]))
        finally:
            await conn.close()
    return users


@pytest.mark.slow
async def test_replicas_killed_at_random_lose_and_duplicate_nothing(
    world: World, runtime_settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = ProactiveSettings(batch_size=5, stale_after_hours=48)
    world.clock.set(START)
    users = await _populate(world)
    while await world.tick():  # every schedule planned before the replicas start
        pass

    epoch = time.time() + 3.0  # the simulated clock starts once the replicas are up
    env = worker_env(runtime_settings.model_copy(update={"worker_poll_seconds": 0.05}))
    env |= {
        "COACHOPS_PROACTIVE_CLOCK_START": START.isoformat(),
        "COACHOPS_PROACTIVE_CLOCK_EPOCH": repr(epoch),
        "COACHOPS_PROACTIVE_CLOCK_SPEED": repr(SPEED),
        "COACHOPS_PROACTIVE_BATCH_SIZE": "5",
        "COACHOPS_PROACTIVE_STALE_AFTER_HOURS": "48",
    }
    argv = [sys.executable, "-m", "coachops_runtime.proactive"]
    replicas: list[ManagedProcess] = []
    starts = 0

    async def start(index: int, wait: bool = True) -> ManagedProcess:
        nonlocal starts
        starts += 1
        process = ManagedProcess(
            f"scheduler-{index}-{starts}", argv, tmp_path / f"scheduler-{starts}.log", env=env
        )
        process.start()

        async def ready() -> bool:
            return "scheduler started" in process.log_path.read_text(errors="replace")

        if wait:
            await process.wait_ready(ready, timeout=30)
        return process

    rng = random.Random(16)
    # Kill times drawn in advance over the simulated week, the same number for each
    # replica, in random order; each kill finds its replica working, idle or still starting
    # after an earlier kill, and restarts it at once.
    victims = [i for i in range(3) for _ in range(KILLS_PER_REPLICA)]
    rng.shuffle(victims)
    moments = sorted(rng.uniform(1.0, REAL_SECONDS - 2.0) for _ in victims)
    killed_working = 0
    try:
        replicas = list(await asyncio.gather(*(start(i) for i in range(3))))
        for moment, victim in zip(moments, victims, strict=True):
            await asyncio.sleep(max(0.0, epoch + moment - time.time()))
            log = replicas[victim].log_path.read_text(errors="replace")
            killed_working += "proactive message sent" in log
            replicas[victim].kill()
            replicas[victim] = await start(victim, wait=False)
        await asyncio.sleep(max(0.0, epoch + REAL_SECONDS - time.time()))
    finally:
        for process in replicas:
            process.stop()  # the survivors end cleanly (SIGTERM: the batch in flight first)
    end = ScaledClock(START, epoch, SPEED).now()
    assert end >= START + SIMULATED * 0.9

    # What the replicas left due before the end, handled here; then every delivery.
    world.clock.set(end)
    drain = ProactivePoller(pool, settings, Engine(settings, None), world.clock)
    while await drain.poll():
        pass
    await world.deliver(seconds=120)

    sent_keys: dict[uuid.UUID, Counter[str]] = {user: Counter() for user in users}
    for row in await world.rows(
        "SELECT end_user_id, occurrence_key FROM proactive_decisions WHERE outcome = 'sent'"
    ):
        sent_keys[row["end_user_id"]][row["occurrence_key"]] += 1
    received_by = Counter(r.to for r in world.standins.sent("telegram"))
    duplicates = missed = 0
    for user, (chat, zone) in users.items():
        expected = set()
        day = START.astimezone(zone).date()
        while (at := datetime.combine(day, datetime.min.time().replace(hour=8), zone)) <= end:
            if at > START:
                expected.add(day.isoformat())
            day += timedelta(days=1)
        received = received_by[chat]
        keys = sent_keys[user]
        duplicates += max(0, received - len(expected)) + sum(n - 1 for n in keys.values())
        missed += len(expected - set(keys)) + max(0, len(expected) - received)
    outcomes = await world.rows(
        "SELECT outcome, reason, count(*) AS n FROM proactive_decisions GROUP BY 1, 2"
    )
    due = await world.rows("SELECT count(*) AS n FROM channel_due")
    summary = ([tuple(r) for r in outcomes], due[0]["n"], end, killed_working)
    assert (duplicates, missed) == (0, 0), summary
    total = sum(received_by[chat] for chat, _ in users.values())
    assert total >= len(users) * 6  # at least six local mornings each
