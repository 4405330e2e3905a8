"""Retention purge benchmark: rows deleted per second and the longest lock held.

    .venv/bin/python bench/retention_bench.py [--messages 1000000] [--creators 10]
        [--days 60] [--limit-days 30] [--batch-size 1000]

Seeds ``--creators`` tenants with one program each (``spec.retention.messageDays`` =
``--limit-days``) and ``--messages`` messages spread evenly over the last ``--days`` UTC
days, one web conversation per 100 messages, then runs one purge of every program with a
``RetentionPoller`` (as the worker does) while a writer keeps adding messages to the same
conversations. It prints:

- throughput: messages deleted per second of the purge's wall time (the analytics
  figures of each day stored first, included);
- the longest delete batch (its row locks are held until it commits) and the longest
  transaction (the day figures: an INSERT ... SELECT that reads the old messages, holding
  only ACCESS SHARE on ``messages``, which blocks no reader or writer);
- the concurrent writer's insert latency (p50, p99, max) during the purge and before it:
  whether the purge delayed anyone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from coachops_crds.constants import tenant_id
from coachops_devstack.stack import start_stack
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.retention.purge import RetentionPoller, cutoff
from coachops_runtime.retention.settings import RetentionSettings


def log(message: str) -> None:
    print(message, flush=True)


async def seed(
    dsn: str, creators: int, messages: int, days: int, limit_days: int
) -> list[uuid.UUID]:
    """Tenants, programs, end users, conversations and messages, as the superuser."""
    conn = await asyncpg.connect(dsn)
    conversations: list[uuid.UUID] = []
    try:
        per_creator = messages // creators
        spec = json.dumps(
            {
                "title": "Bench",
                "persona": {"name": "Coach"},
                "retention": {"messageDays": limit_days},
            }
        )
        for n in range(creators):
            name = f"retention{n}"
            creator, program = tenant_id(name), uuid.uuid4()
            await conn.execute(
                "INSERT INTO creators (creator_id, name, display_name, contact_email, plan,"
                " isolation) VALUES ($1, $2, $2, 'bench@example.com', '{}', 'shared')",
                creator,
                name,
            )
            await conn.execute(
                "INSERT INTO programs (program_id, creator_id, name, title, spec)"
                " VALUES ($1, $2, 'main', 'Bench', $3::jsonb)",
                program,
                creator,
                spec,
            )
            users = max(1, per_creator // 100)
            rows = await conn.fetch(
                "WITH u AS (INSERT INTO end_users (creator_id, display_name)"
                " SELECT $1, 'u' || g FROM generate_series(1, $3) g RETURNING end_user_id)"
                " INSERT INTO conversations (creator_id, program_id, end_user_id, channel)"
                " SELECT $1, $2, end_user_id, 'web' FROM u RETURNING conversation_id",
                creator,
                program,
                users,
            )
            ids = [r["conversation_id"] for r in rows]
            conversations += ids
            # Message g goes to conversation g % users, at a time spread over the days.
            await conn.execute(
                "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
                " direction, author, body, created_at)"
                " SELECT $1, c.conversation_id, $2, c.end_user_id,"
                "   CASE WHEN g % 2 = 0 THEN 'in' ELSE 'out' END,"
                "   CASE WHEN g % 2 = 0 THEN 'end_user' ELSE 'ai' END,"
                "   'a message of about the length of a short coaching exchange, ' || g,"
                "   now() - make_interval(secs => (g::float8 / $3) * $4 * 86400)"
                " FROM generate_series(0, $3 - 1) g"
                " JOIN conversations c ON c.conversation_id = ($5::uuid[])[g % $6 + 1]",
                creator,
                program,
                per_creator,
                days,
                ids,
                len(ids),
            )
            log(f"  seeded {name}: {per_creator} messages, {len(ids)} conversations")
        await conn.execute("VACUUM ANALYZE messages")
    finally:
        await conn.close()
    return conversations


async def writer(
    dsn: str, conversations: list[uuid.UUID], stop: asyncio.Event, latencies: list[float]
) -> None:
    """Insert a message into one conversation after another, as the owner under its
    tenant, timing each insert."""
    conn = await asyncpg.connect(dsn)
    try:
        meta = await conn.fetch(
            "SELECT conversation_id, creator_id, program_id, end_user_id FROM conversations"
            " WHERE conversation_id = ANY($1::uuid[])",
            conversations[:: max(1, len(conversations) // 200)],
        )
        n = 0
        while not stop.is_set():
            row = meta[n % len(meta)]
            n += 1
            started = time.perf_counter()
            await conn.execute(
                "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
                " direction, author, body) VALUES ($1, $2, $3, $4, 'in', 'end_user', 'new')",
                row["creator_id"],
                row["conversation_id"],
                row["program_id"],
                row["end_user_id"],
            )
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
    finally:
        await conn.close()


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f} ms"
        f" p99={p99 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--creators", type=int, default=10)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--limit-days", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    stack = await start_stack(with_cluster=False)
    try:
        pg = stack.postgres
        log(f"seeding {args.messages} messages over {args.days} days ...")
        began = time.perf_counter()
        conversations = await seed(
            pg.superuser_dsn, args.creators, args.messages, args.days, args.limit_days
        )
        log(f"seeded in {time.perf_counter() - began:.1f} s")
        conn = await asyncpg.connect(pg.superuser_dsn)
        limit = cutoff(datetime.now(UTC), args.limit_days)
        old = await conn.fetchval("SELECT count(*) FROM messages WHERE created_at < $1", limit)

        settings = Settings(environment="development", database_url=pg.runtime_dsn, db_pool_size=2)
        pool = await create_pool(settings)
        poller = RetentionPoller(pool, RetentionSettings(batch_size=args.batch_size))

        baseline: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(writer(pg.superuser_dsn, conversations, stop, baseline))
        await asyncio.sleep(5)
        stop.set()
        await task

        during: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(writer(pg.superuser_dsn, conversations, stop, during))
        began = time.perf_counter()
        deleted = await poller.run()
        elapsed = time.perf_counter() - began
        stop.set()
        await task
        await pool.close()

        left = await conn.fetchval("SELECT count(*) FROM messages WHERE created_at < $1", limit)
        days_kept = await conn.fetchval("SELECT count(*) FROM message_days")
        await conn.close()
        stats = poller.stats
        log("")
        log(f"messages older than the limit: {old}; deleted: {stats.messages}; left: {left}")
        log(f"day figures stored: {days_kept} (programs x days)")
        log(f"purge wall time: {elapsed:.2f} s; throughput: {deleted / elapsed:,.0f} rows/s")
        log(
            f"transactions: {stats.transactions}; longest delete batch"
            f" ({args.batch_size} rows): {stats.longest_batch_seconds * 1000:.1f} ms;"
            f" longest transaction: {stats.longest_transaction_seconds * 1000:.1f} ms"
        )
        log(f"writer before the purge: {summary(baseline)}")
        log(f"writer during the purge: {summary(during)}")
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
