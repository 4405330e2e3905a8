"""Privacy benchmark: export and erasure of an end user with 10,000 messages, and the
verification scan's run time over a seeded data set.

    .venv/bin/python bench/privacy_bench.py [--creators 1000 --end-users 50000 \\
        --messages 1000000] [--person-messages 10000] [--scan-texts 200]

It starts PostgreSQL, Redis and ChromaDB (no cluster), seeds the background data set with
``bench/api_bench.py``'s COPY seeding, then one end user of the first creator with
``--person-messages`` messages on two channels (half inbound, AI replies with citations),
goals and a memory summary. Then, with the worker's privacy poller in this process:

1. export: the job's run (read, encode, store) and the archive's size;
2. erasure: the job's run with the default batch of 1,000 rows;
3. scan: after the erasure, the person's identifiers and ``--scan-texts`` of their
   message texts searched in every PostgreSQL table and column, Redis and ChromaDB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from coachops_crds.constants import CHROMA_DATABASE, chroma_tenant, tenant_id
from coachops_crds.constants import program_id as derived_program_id
from coachops_devstack.stack import start_stack
from coachops_operator.vectors import VectorStore as OperatorVectors
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.privacy.scan import person_needles, scan
from coachops_runtime.privacy.settings import PrivacySettings
from coachops_runtime.privacy.worker import PrivacyPoller

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_bench import seed


def log(message: str) -> None:
    print(message, flush=True)


async def seed_person(dsn: str, creator_name: str, messages: int) -> uuid.UUID:
    """One end user with ``messages`` messages on Telegram and SMS, goals and memory."""
    creator = tenant_id(creator_name)
    program = derived_program_id(creator_name, "main")
    person = uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO end_users (end_user_id, creator_id, email, external_id, display_name)"
            " VALUES ($1, $2, 'bench-person@example.com', 'bench-person', 'Bench Person')",
            person,
            creator,
        )
        await conn.execute(
            "INSERT INTO enrolments (creator_id, end_user_id, program_id) VALUES ($1, $2, $3)",
            creator,
            person,
            program,
        )
        start = datetime.now(UTC) - timedelta(days=60)
        for channel in ("telegram", "sms"):
            conversation = uuid.uuid4()
            await conn.execute(
                "INSERT INTO conversations (conversation_id, creator_id, program_id,"
                " end_user_id, channel) VALUES ($1, $2, $3, $4, $5)",
                conversation,
                creator,
                program,
                person,
                channel,
            )
            citations = json.dumps([{"number": 1, "source": "guide.md", "snippet": "Sleep"}])
            records = []
            for k in range(messages // 2):
                inbound = k % 2 == 0
                records.append(
                    (
                        creator,
                        conversation,
                        program,
                        person,
                        "in" if inbound else "out",
                        "end_user" if inbound else "ai",
                        f"bench person {channel} message {k}",
                        None if inbound else citations,
                        start + timedelta(minutes=k * 7),
                    )
                )
            await conn.copy_records_to_table(
                "messages",
                columns=[
                    "creator_id",
                    "conversation_id",
                    "program_id",
                    "end_user_id",
                    "direction",
                    "author",
                    "body",
                    "citations",
                    "created_at",
                ],
                records=records,
            )
            await conn.execute(
                "INSERT INTO conversation_memory (conversation_id, creator_id, summary)"
                " VALUES ($1, $2, 'Bench Person sleeps badly')",
                conversation,
                creator,
            )
        for n in range(5):
            await conn.execute(
                "INSERT INTO goals (creator_id, end_user_id, program_id, title, created_by)"
                " VALUES ($1, $2, $3, $4, 'end_user')",
                creator,
                person,
                program,
                f"bench goal {n}",
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return person


async def run_job(poller: PrivacyPoller) -> float:
    started = time.monotonic()
    while await poller.poll():
        pass
    return time.monotonic() - started


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creators", type=int, default=100)
    parser.add_argument("--end-users", type=int, default=5_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--person-messages", type=int, default=10_000)
    parser.add_argument("--scan-texts", type=int, default=200)
    args = parser.parse_args()

    stack = await start_stack(with_cluster=False)
    try:
        pg = stack.postgres
        await seed(pg.superuser_dsn, args.creators, args.end_users, args.messages)
        creator_name = "bench-0000"
        store = OperatorVectors(stack.chroma.url)
        await store.ensure(chroma_tenant(creator_name), CHROMA_DATABASE)
        await store.close()
        person = await seed_person(pg.superuser_dsn, creator_name, args.person_messages)
        ids, texts = await person_needles(pg.superuser_dsn, person)
        settings = Settings(
            database_url=pg.runtime_dsn,
            redis_url=stack.redis.url,
            chroma_url=stack.chroma.url,
            kubeconfig=None,
        )
        pool = await create_pool(settings.model_copy(update={"db_pool_size": 4}))
        poller = PrivacyPoller(settings, pool, PrivacySettings())
        creator = tenant_id(creator_name)
        conn = await asyncpg.connect(pg.superuser_dsn)
        try:
            await conn.execute(
                "INSERT INTO export_jobs (creator_id, end_user_id, requested_by)"
                " VALUES ($1, $2, 'bench')",
                creator,
                person,
            )
            export_seconds = await run_job(poller)
            size, items = await conn.fetchrow(
                "SELECT size_bytes, item_count FROM export_jobs WHERE end_user_id = $1", person
            )
            await conn.execute(
                "INSERT INTO erasure_jobs (creator_id, end_user_id, requested_by)"
                " VALUES ($1, $2, 'bench')",
                creator,
                person,
            )
            erasure_seconds = await run_job(poller)
            removed = await conn.fetchval("SELECT removed FROM erasure_tombstones")
            total = await conn.fetchval("SELECT count(*) FROM messages")
        finally:
            await conn.close()
            await poller.close()
            await pool.close()
        needles = ids + texts[: args.scan_texts]
        started = time.monotonic()
        report = await scan(
            ids,
            texts[: args.scan_texts],
            database_url=pg.superuser_dsn,
            redis_url=stack.redis.url,
            chroma_url=stack.chroma.url,
        )
        scan_seconds = time.monotonic() - started
        log("")
        log("| figure | measured |")
        log("|---|---|")
        log(
            f"| export, {args.person_messages:,} messages ({items:,} items, {size / 1e6:.1f} MB"
            f" JSON) | {export_seconds:.2f} s |"
        )
        log(
            f"| erasure, {args.person_messages:,} messages, batches of 1,000 rows"
            f" | {erasure_seconds:.2f} s |"
        )
        log(
            f"| scan, {len(needles)} needles over {total:,} messages, {args.creators:,}"
            f" creators, {args.end_users:,} end users (PostgreSQL, Redis, Chroma)"
            f" | {scan_seconds:.1f} s, {len(report.traces)} traces |"
        )
        log(f"erasure removed: {removed}")
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
