"""Proactive engine benchmark: many end users due at the same minute.

    .venv/bin/python bench/proactive_bench.py [--users 50000] [--creators 1000]
        [--replicas 1] [--idle-seconds 60] [--delivery-concurrency 32] [--first-day]

1. Seed (as the operator and the webhooks would, in bulk): ``--creators`` creators, one
   program each with a daily 09:00 check-in (template content, so the model is not the
   bottleneck) on Telegram, ``--users`` end users spread over them, each enrolled (the
   enrolment trigger makes their schedule) with a Telegram identity; unless
   ``--first-day``, a day of history per end user as a running platform has it (their
   conversation and a message from them, yesterday's check-in, decision and delivery).
2. Plan: one in-process pass at 08:55 (simulated) plans every schedule's 09:00.
3. Idle: ``--replicas`` scheduler processes (``python -m coachops_runtime.proactive``, 1 s
   poll) run for ``--idle-seconds`` with every schedule in the future: their CPU,
   PostgreSQL's CPU and the database's transactions per minute.
4. Due: the processes' clock (``COACHOPS_PROACTIVE_CLOCK_*``, real speed) reaches 09:00:00:
   the time until every check-in is enqueued (a message in its conversation and a
   delivery in the channel outbox), then delivery by ``ChannelPoller`` in this process to
   the Telegram stand-in (a separate process) in messages per second; scheduler RSS (peak)
   and CPU, PostgreSQL CPU.
5. Baseline, in the same database: one statement inserting as many messages (their
   triggers queueing the deliveries), rolled back: the floor under step 4's enqueue.

With ``--first-day`` the conversation, message and decision tables are empty when the
burst starts, and the plans PostgreSQL caches for them early (its foreign-key checks
among them) stay those of small tables until autovacuum analyses them (about a minute):
expect a slower enqueue.

The figures depend on the machine's load: print the load average next to them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet

from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import start_stack
from coachops_devstack.standins import ProviderStandIns
from coachops_runtime.channels.outbox import ChannelPoller
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.clock import FixedClock
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings

TOKEN = "111:bench-token"
DUE = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SCRIPT = str(Path(__file__).resolve())


def log(message: str) -> None:
    print(message, flush=True)


def serve_standins(port: int) -> None:
    """The Telegram stand-in, in its own process; prints what it accepted when stopped."""

    async def run() -> None:
        standins = ProviderStandIns()
        standins.telegram_tokens.add(TOKEN)
        await standins.start(port=port)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        print(json.dumps({"received": len(standins.received)}), flush=True)
        await standins.stop()

    asyncio.run(run())


async def seed(dsn: str, key: str, creators: int, users: int, *, history: bool) -> None:
    spec = {
        "title": "Bench",
        "persona": {"name": "Coach"},
        "channels": [{"type": "telegram", "secretRef": "bench"}],
        "proactive": {
            "checkIns": [{"name": "morning", "cron": "0 9 * * *", "content": "template"}],
            "quietHours": {"start": "00:00", "end": "00:00"},
        },
    }
    secret = Fernet(key).encrypt(
        json.dumps({"bot-token": TOKEN, "webhook-secret": "s"}, sort_keys=True).encode()
    )
    conn = await asyncpg.connect(dsn)
    try:
        # The superuser is not subject to row-level security: one statement per table.
        await conn.execute(
            "INSERT INTO creators (creator_id, name, display_name, contact_email, plan,"
            " isolation) SELECT gen_random_uuid(), 'bench' || n, 'Bench ' || n,"
            " 'bench@example.com', '{}'::jsonb, 'shared' FROM generate_series(1, $1) n",
            creators,
        )
        await conn.execute(
            "INSERT INTO programs (program_id, creator_id, name, title, spec)"
            " SELECT gen_random_uuid(), creator_id, 'main', 'Main', $1::jsonb FROM creators",
            json.dumps(spec),
        )
        await conn.execute(
            "INSERT INTO channel_credentials (creator_id, program_id, channel, secret_name,"
            " secret_hash, ciphertext) SELECT creator_id, program_id, 'telegram', 'bench',"
            " 'bench', $1 FROM programs",
            secret,
        )
        await conn.execute(
            """
            WITH p AS (SELECT row_number() OVER (ORDER BY program_id) - 1 AS i, creator_id,
                              program_id FROM programs),
                 u AS (INSERT INTO end_users (creator_id, display_name, status, external_id)
                       SELECT p.creator_id, 'user' || n, 'active', n::text
                       FROM generate_series(1, $1) n JOIN p ON p.i = n % $2
                       RETURNING creator_id, end_user_id, external_id)
            INSERT INTO channel_identities (creator_id, program_id, channel, external_id,
                end_user_id, address, last_inbound_at)
            SELECT u.creator_id, p.program_id, 'telegram', u.external_id, u.end_user_id,
                   u.external_id, $3
            FROM u JOIN p ON p.creator_id = u.creator_id
            """,
            users,
            creators,
            DUE - timedelta(hours=1),
        )
        began = time.monotonic()
        await conn.execute(
            "INSERT INTO enrolments (creator_id, end_user_id, program_id)"
            " SELECT i.creator_id, i.end_user_id, i.program_id FROM channel_identities i"
        )
        log(f"enrolled {users} end users (their schedules by trigger) in"
            f" {time.monotonic() - began:.1f} s")  # fmt: skip
        if history:
            began = time.monotonic()
            await seed_history(conn)
            log(f"seeded yesterday's history in {time.monotonic() - began:.1f} s")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def seed_history(conn: asyncpg.Connection) -> None:
    """A day of history per end user, as yesterday would have left it: their Telegram
    conversation with a message from them, yesterday's check-in (message, ``sent``
    decision and its delivered outbox row). Written with triggers off (nothing is queued);
    the tables then hold what a running platform's do, and the planner's statistics with
    them."""
    yesterday = DUE - timedelta(days=1)
    await conn.execute("SET session_replication_role = replica")
    await conn.execute(
        "INSERT INTO conversations (creator_id, program_id, end_user_id, channel, created_at,"
        " last_message_at) SELECT creator_id, program_id, end_user_id, 'telegram', $1, $2"
        " FROM channel_identities",
        yesterday - timedelta(days=1),
        DUE - timedelta(hours=1),
    )
    await conn.execute(
        "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
        " direction, author, kind, body, created_at)"
        " SELECT creator_id, conversation_id, program_id, end_user_id, d, a, k, b, t"
        " FROM conversations, (VALUES"
        " ('out', 'ai', 'check_in', 'Hi, checking in', $1::timestamptz),"
        " ('in', 'end_user', 'chat', 'All good', $2::timestamptz)) AS v(d, a, k, b, t)",
        yesterday,
        DUE - timedelta(hours=1),
    )
    await conn.execute(
        "INSERT INTO channel_outbox (creator_id, program_id, conversation_id, end_user_id,"
        " message_id, channel, body, state, attempts, parts_sent, next_attempt_at,"
        " created_at, finished_at)"
        " SELECT creator_id, program_id, conversation_id, end_user_id, message_id,"
        " 'telegram', body, 'sent', 1, 1, created_at, created_at, created_at"
        " FROM messages WHERE direction = 'out'"
    )
    await conn.execute(
        "INSERT INTO proactive_decisions (creator_id, program_id, end_user_id, schedule_id,"
        " kind, item, occurrence, occurrence_key, outcome, reason, channel, message_id,"
        " local_day, decided_at)"
        " SELECT m.creator_id, m.program_id, m.end_user_id, s.schedule_id, 'check_in',"
        " 'morning', $1, $2, 'sent', 'scheduled', 'telegram', m.message_id, $3, $1"
        " FROM messages m JOIN proactive_schedules s ON s.program_id = m.program_id"
        " AND s.end_user_id = m.end_user_id WHERE m.direction = 'out'",
        yesterday,
        yesterday.date().isoformat(),
        yesterday.date(),
    )
    await conn.execute("SET session_replication_role = DEFAULT")


async def raw_enqueue(conn: asyncpg.Connection, total: int) -> float:
    """The baseline: seconds for one statement (the superuser's, no row-level security)
    to insert ``total`` outbound messages into the end users' conversations, their
    triggers queueing the channel deliveries: the rows every check-in writes, without
    the engine deciding anything. Rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        began = time.monotonic()
        await conn.execute(
            "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
            " direction, author, kind, body, created_at)"
            " SELECT creator_id, conversation_id, program_id, end_user_id, 'out', 'ai',"
            " 'check_in', 'Hi there, checking in: how are things going?', $1"
            " FROM conversations LIMIT $2",
            DUE,
            total,
        )
        return time.monotonic() - began
    finally:
        await transaction.rollback()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_of_tree(root: int) -> float:
    """utime + stime of ``root`` and its children (the postmaster and its backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--creators", type=int, default=1_000)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--delivery-concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--lanes", type=int, default=4, help="batches per scheduler at once")
    parser.add_argument(
        "--first-day",
        action="store_true",
        help="no history: empty conversation, message and decision tables at 09:00",
    )
    args = parser.parse_args()

    stack = await start_stack(with_cluster=False)
    processes: list[ManagedProcess] = []
    key = Fernet.generate_key().decode()
    try:
        pg = stack.postgres
        log(f"load average before seeding: {os.getloadavg()}")
        began = time.monotonic()
        await seed(pg.superuser_dsn, key, args.creators, args.users, history=not args.first_day)
        log(f"seeded in {time.monotonic() - began:.1f} s")
        settings = Settings(
            environment="development",
            database_url=pg.runtime_dsn,
            redis_url=stack.redis.url,
            kubeconfig=None,
            db_pool_size=args.delivery_concurrency + 4,
        )
        pool = await create_pool(settings)
        proactive = ProactiveSettings(batch_size=args.batch_size, concurrency=2)
        planner = ProactivePoller(
            pool, proactive, Engine(proactive, None), FixedClock(DUE - timedelta(minutes=5))
        )
        began = time.monotonic()
        planned = await planner.poll()
        log(f"planned {planned} schedules in {time.monotonic() - began:.1f} s")

        standin_port = free_port()
        standins = ManagedProcess(
            "standins",
            [sys.executable, SCRIPT, "--serve-standins", str(standin_port)],
            stack.workdir / "standins.log",
        )
        standins.start()
        processes.append(standins)

        lead = args.idle_seconds + 25  # the processes start, then idle, then 09:00
        epoch = time.time() + lead
        env = {
            "COACHOPS_ENVIRONMENT": "development",
            "COACHOPS_DATABASE_URL": pg.runtime_dsn,
            "COACHOPS_REDIS_URL": stack.redis.url,
            "COACHOPS_LOG_LEVEL": "WARNING",
            "KUBECONFIG": "",
            "COACHOPS_WORKER_POLL_SECONDS": "1",
            "COACHOPS_PROACTIVE_BATCH_SIZE": str(args.batch_size),
            "COACHOPS_PROACTIVE_CONCURRENCY": str(args.lanes),
            "COACHOPS_PROACTIVE_CLOCK_START": DUE.isoformat(),
            "COACHOPS_PROACTIVE_CLOCK_EPOCH": repr(epoch),
            "COACHOPS_PROACTIVE_CLOCK_SPEED": "1",
        }
        schedulers = []
        for index in range(args.replicas):
            process = ManagedProcess(
                f"scheduler-{index}",
                [sys.executable, "-m", "coachops_runtime.proactive"],
                stack.workdir / f"scheduler-{index}.log",
                env=env,
            )
            process.start()
            processes.append(process)
            schedulers.append(process)
        await asyncio.sleep(20)  # started (imports take seconds on a busy machine)
        postmaster = pg.process.pid if pg.process is not None else 0
        conn = await asyncpg.connect(pg.superuser_dsn)
        commits = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
        database = pg.runtime_dsn.rsplit("/", 1)[1].split("?")[0]

        idle_began = time.monotonic()
        idle_xacts = await conn.fetchval(commits, database)
        idle_pg = cpu_seconds_of_tree(postmaster)
        idle_cpu = sum(cpu_seconds(p.pid) for p in schedulers)
        idle_load = os.getloadavg()[0]
        await asyncio.sleep(max(1.0, epoch - time.time() - 3))
        idle_span = time.monotonic() - idle_began
        idle_cpu = sum(cpu_seconds(p.pid) for p in schedulers) - idle_cpu
        idle_pg = cpu_seconds_of_tree(postmaster) - idle_pg
        idle_xacts = await conn.fetchval(commits, database) - idle_xacts
        idle_rss = [peak_rss_mb(p.pid) for p in schedulers]

        channel_settings = ChannelSettings(
            key=key,
            telegram_api=f"http://127.0.0.1:{standin_port}/telegram",
            concurrency=args.delivery_concurrency,
        )
        outbox = ChannelPoller(settings, pool, channel_settings)
        await asyncio.sleep(max(0.0, epoch - time.time()))
        due_began = time.monotonic()
        due_pg = cpu_seconds_of_tree(postmaster)
        due_cpu = sum(cpu_seconds(p.pid) for p in schedulers)
        delivery_cpu = time.process_time()
        total = args.users
        enqueue: dict[str, float] = {}

        async def watch_enqueue() -> None:
            """When every check-in has its message and delivery (polled every 0.2 s)."""
            watcher = await asyncpg.connect(pg.superuser_dsn)
            try:
                while True:
                    sent = await watcher.fetchval(
                        "SELECT count(*) FROM proactive_decisions"
                        " WHERE outcome = 'sent' AND decided_at >= $1",
                        DUE,
                    )
                    if sent >= total:
                        enqueue["seconds"] = time.monotonic() - due_began
                        enqueue["cpu"] = sum(cpu_seconds(p.pid) for p in schedulers) - due_cpu
                        return
                    await asyncio.sleep(0.2)
            finally:
                await watcher.close()

        watcher = asyncio.create_task(watch_enqueue())
        delivered = 0
        while True:
            handled = await outbox.poll()
            delivered += handled
            if (
                watcher.done()
                and handled == 0
                and await conn.fetchval("SELECT count(*) FROM channel_due") == 0
            ):
                break
            if handled == 0:
                await asyncio.sleep(0.01)
            if time.monotonic() - due_began > 3600:
                raise RuntimeError("not delivered within an hour")
        await watcher
        enqueued_at, enqueue_cpu = enqueue["seconds"], enqueue["cpu"]
        wall = time.monotonic() - due_began
        delivery_cpu = time.process_time() - delivery_cpu
        due_pg = cpu_seconds_of_tree(postmaster) - due_pg
        due_load = os.getloadavg()
        rss = [peak_rss_mb(p.pid) for p in schedulers]
        states = dict(
            await conn.fetch(
                "SELECT state, count(*) FROM channel_outbox WHERE created_at >= $1 GROUP BY 1",
                DUE,
            )
        )
        reasons = dict(
            await conn.fetch(
                "SELECT reason, count(*) FROM proactive_decisions WHERE decided_at >= $1"
                " GROUP BY 1",
                DUE,
            )
        )
        for process in schedulers:
            process.stop()
        raw_seconds = await raw_enqueue(conn, total)
        await outbox.close()
        await pool.close()
        await conn.close()
        standins.stop()
        received = json.loads(standins.log_path.read_text().strip().splitlines()[-1])["received"]

        log("")
        log(f"{args.users} end users, {args.creators} creators, {args.replicas} scheduler"
            f" process(es) x {args.lanes} lanes, batch {args.batch_size}, delivery"
            f" x{args.delivery_concurrency}; load average at the end {due_load}")  # fmt: skip
        log("| due at 09:00:00 | figure |")
        log("|---|---|")
        log(f"| all enqueued (message + channel delivery) after | {enqueued_at:.1f} s |")
        log(f"| enqueue rate | {total / enqueued_at:.0f} check-ins/s |")
        log(f"| all delivered to the stand-in after | {wall:.1f} s |")
        log(f"| delivery rate (09:00 to last delivery) | {delivered / wall:.0f} msgs/s |")
        log(f"| baseline: the same messages inserted by one statement | {raw_seconds:.1f} s"
            f" ({total / raw_seconds:.0f}/s) |")  # fmt: skip
        log(f"| scheduler CPU while enqueuing | {enqueue_cpu:.1f} s |")
        log(f"| delivery poller CPU (this process) | {delivery_cpu:.1f} s |")
        log(f"| PostgreSQL CPU, 09:00 to last delivery | {due_pg:.1f} s |")
        log(f"| scheduler peak RSS | {', '.join(f'{r:.0f} MB' for r in rss)} |")
        log("")
        log(f"| idle, {args.users} future schedules, {idle_span:.0f} s, load {idle_load:.1f} |"
            " figure |")  # fmt: skip
        log("|---|---|")
        log(f"| transactions per minute (whole database) | {idle_xacts * 60 / idle_span:.0f} |")
        log(f"| scheduler CPU | {idle_cpu * 1000 / idle_span:.1f} ms/s |")
        log(f"| PostgreSQL CPU | {idle_pg * 1000 / idle_span:.1f} ms/s |")
        log(f"| scheduler RSS (peak, idle) | {', '.join(f'{r:.0f} MB' for r in idle_rss)} |")
        log("")
        log(f"stand-in received {received}; outbox {states}; decisions {reasons}")
    finally:
        for process in processes:
            process.stop()
        stack.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-standins":
        serve_standins(int(sys.argv[2]))
    else:
        asyncio.run(main())
