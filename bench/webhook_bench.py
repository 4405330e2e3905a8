"""Channel benchmark: webhook ingest and outbox delivery.

    .venv/bin/python bench/webhook_bench.py [--duration 20] [--concurrency 32]
        [--channel telegram|slack] [--deliveries 5000]

1. Ingest: signed inbound webhooks per second that the runtime (a uvicorn process)
   verifies, deduplicates, maps to an end user and stores with their reply job, and the
   p50/p95 latency of the acknowledgement; next to a bare uvicorn endpoint that only
   verifies the same signature, interleaved in the same run (A/B/A/B, the median round
   of each). Every accepted request must be one stored message with one reply job.
2. Delivery: messages per second from the channel outbox to the provider stand-ins (a
   separate process), one conversation per sender, by a ``ChannelPoller`` in this process
   at ``--delivery-concurrency``; the poller's CPU and PostgreSQL's CPU (the postmaster
   and its backends) over the same interval.

The servers are pinned to CPU 0 and the load generator to CPU 1; PostgreSQL floats.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from coachops_crds.constants import program_id as derived_program_id
from coachops_crds.constants import tenant_id
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import start_stack
from coachops_devstack.standins import ProviderStandIns, signers
from coachops_runtime.auth.keys import generate_key_file
from coachops_runtime.channels.outbox import ChannelPoller
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings

CREATOR, PROGRAM = "hookbench", "main"
SECRETS = {
    "telegram": {"bot-token": "111:bench-token", "webhook-secret": "bench-hook-secret"},
    "slack": {"bot-token": "xoxb-bench", "signing-secret": "bench-signing-secret"},
}


SCRIPT = str(Path(__file__).resolve())


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the bare endpoint


def bare_app(channel: str) -> Any:
    """A Starlette app that only verifies the signature (the same check, no database)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    secret = SECRETS[channel]["webhook-secret" if channel == "telegram" else "signing-secret"]

    async def hook(request: Request) -> Response:
        body = await request.body()
        if channel == "telegram":
            given = request.headers.get("x-telegram-bot-api-secret-token", "")
            ok = hmac.compare_digest(given.encode(), secret.encode())
        else:
            ts = request.headers.get("x-slack-request-timestamp", "0")
            digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
            given = request.headers.get("x-slack-signature", "")
            ok = abs(time.time() - int(ts)) <= 300 and hmac.compare_digest(
                given, f"v0={digest.hexdigest()}"
            )
        return Response(b"{}" if ok else b"", status_code=200 if ok else 401)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def serve_bare(port: int, channel: str) -> None:
    import uvicorn

    uvicorn.run(bare_app(channel), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


def serve_standins(port: int, channel: str) -> None:
    async def run() -> None:
        standins = ProviderStandIns()
        standins.telegram_tokens.add(SECRETS["telegram"]["bot-token"])
        standins.slack_tokens.add(SECRETS["slack"]["bot-token"])
        await standins.start(port=port)
        await asyncio.Event().wait()

    asyncio.run(run())


# ---------------------------------------------------------------- seeding


async def seed(dsn: str, key: str, channel: str) -> uuid.UUID:
    creator, program = tenant_id(CREATOR), derived_program_id(CREATOR, PROGRAM)
    plan = {"requestsPerSecond": 100_000, "messagesPerMonth": 100_000_000}
    spec = {
        "title": "Main",
        "persona": {"name": "Coach"},
        "limits": {"messagesPerUserPerDay": 1_000_000},
        "channels": [{"type": channel, "secretRef": "bench"}],
    }
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO creators (creator_id, name, display_name, contact_email, plan,"
            " isolation) VALUES ($1, $2, $2, 'bench@example.com', $3::jsonb, 'shared')",
            creator, CREATOR, json.dumps(plan),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO programs (program_id, creator_id, name, title, spec)"
            " VALUES ($1, $2, $3, 'Main', $4::jsonb)",
            program, creator, PROGRAM, json.dumps(spec),
        )  # fmt: skip
        ciphertext = Fernet(key).encrypt(json.dumps(SECRETS[channel], sort_keys=True).encode())
        await conn.execute(
            "INSERT INTO channel_credentials (creator_id, program_id, channel, secret_name,"
            " secret_hash, ciphertext) VALUES ($1, $2, $3, 'bench', 'bench', $4)",
            creator, program, channel, ciphertext,
        )  # fmt: skip
    finally:
        await conn.close()
    return program


# ---------------------------------------------------------------- load


class Load:
    def __init__(self, channel: str, senders: int) -> None:
        self.channel = channel
        self.senders = senders
        self.sequence = 0

    def next(self) -> tuple[bytes, dict[str, str]]:
        self.sequence += 1
        n = self.sequence
        chat = 500_000 + n % self.senders
        if self.channel == "telegram":
            update = signers.telegram_text(n, chat, f"message {n}")
            return signers.telegram(SECRETS["telegram"]["webhook-secret"], update)
        payload = signers.slack_message(f"Ev{n:09d}", f"U{chat}", f"D{chat}", f"message {n}")
        return signers.slack(SECRETS["slack"]["signing-secret"], payload)


async def closed_loop(url: str, load: Load, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                body, headers = load.next()
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                        continue
                latencies.append(time.perf_counter() - started)

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "ok": len(latencies),
        "failed": failures,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
    }


async def robustness(url: str, load: Load, conn: asyncpg.Connection, count: int) -> tuple[int, int]:
    """``count`` webhooks signed with a wrong secret, and ``count`` copies of one update
    (16 at a time): how many forgeries were accepted, how often the update was stored."""
    accepted = 0
    wrong = {key: f"{value}-forged" for key, value in SECRETS[load.channel].items()}
    body, headers = load.next()
    marker = f"message {load.sequence}"
    forged = []
    for _ in range(count):
        forged_body, _ = load.next()
        if load.channel == "telegram":
            forged.append(signers.telegram(wrong["webhook-secret"], json.loads(forged_body)))
        else:
            forged.append(signers.slack(wrong["signing-secret"], json.loads(forged_body)))
    semaphore = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as http:

        async def post(data: bytes, head: dict[str, str]) -> int:
            async with semaphore, http.post(url, data=data, headers=head) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(post(b, h) for b, h in forged))
        accepted = sum(1 for status in statuses if status == 200)
        await asyncio.gather(*(post(body, headers) for _ in range(count)))
    stored = await conn.fetchval("SELECT count(*) FROM messages WHERE body = $1", marker)
    return accepted, int(stored)


def median_round(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


# ---------------------------------------------------------------- CPU accounting


def cpu_seconds_of_tree(root: int) -> float:
    """utime + stime of ``root`` and its children (the postmaster and its backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# ---------------------------------------------------------------- main


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channel", choices=sorted(SECRETS), default="telegram")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--senders", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--delivery-concurrency", type=int, default=32)
    parser.add_argument("--attacks", type=int, default=1000)
    args = parser.parse_args()
    channel = args.channel

    stack = await start_stack(with_cluster=False)
    processes: list[ManagedProcess] = []
    key = Fernet.generate_key().decode()
    script = SCRIPT

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(
            name, ["taskset", "-c", "0", *argv], stack.workdir / f"{name}.log", env=env
        )
        process.start()
        processes.append(process)
        return process

    async def wait_port(port: int, process: ManagedProcess) -> None:
        async def up() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        await process.wait_ready(up, timeout=60)

    try:
        pg = stack.postgres
        program = await seed(pg.superuser_dsn, key, channel)
        keys = stack.workdir / "jwt-keys"
        generate_key_file(keys, "bench")
        port, bare_port, standin_port = free_port(), free_port(), free_port()
        runtime = start(
            "runtime",
            [sys.executable, "-m", "coachops_runtime", "--port", str(port)],
            {
                "COACHOPS_ENVIRONMENT": "development",
                "COACHOPS_DATABASE_URL": pg.runtime_dsn,
                "COACHOPS_REDIS_URL": stack.redis.url,
                "COACHOPS_JWT_KEYS_DIR": str(keys),
                "COACHOPS_LOG_LEVEL": "WARNING",
                "COACHOPS_CHANNEL_KEY": key,
                "KUBECONFIG": "",
            },
        )
        bare = start("bare", [sys.executable, script, "--serve-bare", str(bare_port), channel])
        await wait_port(port, runtime)
        await wait_port(bare_port, bare)
        os.sched_setaffinity(0, {1})
        load = Load(channel, args.senders)
        runtime_url = f"http://127.0.0.1:{port}/v1/hooks/{channel}/{program}"
        bare_url = f"http://127.0.0.1:{bare_port}/hook"
        await closed_loop(runtime_url, load, 8, 2)  # warm-up; enrols most senders
        await closed_loop(bare_url, load, 8, 1)
        runtime_runs, bare_runs = [], []
        share = args.duration / args.rounds
        log(f"ingest: {args.rounds} rounds of {share:.1f} s each, runtime and bare interleaved")
        for _ in range(args.rounds):
            runtime_runs.append(await closed_loop(runtime_url, load, args.concurrency, share))
            bare_runs.append(await closed_loop(bare_url, load, args.concurrency, share))
        conn = await asyncpg.connect(pg.superuser_dsn)
        stored = await conn.fetchval("SELECT count(*) FROM messages WHERE direction = 'in'")
        jobs = await conn.fetchval("SELECT count(*) FROM reply_jobs")
        accepted = sum(int(r["ok"]) for r in runtime_runs) + 0
        warm = await conn.fetchval("SELECT count(*) FROM channel_inbound") - accepted
        ingest = median_round(runtime_runs)
        baseline = median_round(bare_runs)
        forged_ok, duplicate_stored = await robustness(runtime_url, load, conn, args.attacks)

        # ------------------------------------------------ delivery
        os.sched_setaffinity(0, {0, 1})
        standins = start(
            "standins", [sys.executable, script, "--serve-standins", str(standin_port), channel]
        )
        await wait_port(standin_port, standins)
        await conn.execute("DELETE FROM reply_jobs")  # no AI here: deliveries only
        conversations = [
            r["conversation_id"]
            for r in await conn.fetch("SELECT conversation_id FROM conversations")
        ]
        per = max(1, args.deliveries // len(conversations))
        await conn.execute(
            "INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id,"
            " direction, author, body)"
            " SELECT v.creator_id, v.conversation_id, v.program_id, v.end_user_id, 'out',"
            " 'creator', 'delivery ' || n FROM conversations v, generate_series(1, $1) n",
            per,
        )
        total = int(await conn.fetchval("SELECT count(*) FROM channel_outbox"))
        base = f"http://127.0.0.1:{standin_port}"
        channel_settings = ChannelSettings(
            key=key,
            telegram_api=f"{base}/telegram",
            slack_api=f"{base}/slack",
            concurrency=args.delivery_concurrency,
        )
        settings = Settings(
            environment="development",
            database_url=pg.runtime_dsn,
            redis_url=stack.redis.url,
            jwt_keys_dir=keys,
            kubeconfig=None,
            db_pool_size=args.delivery_concurrency + 2,
        )
        pool = await create_pool(settings)
        poller = ChannelPoller(settings, pool, channel_settings)
        postmaster = pg.process.pid if pg.process is not None else 0
        pg_cpu, cpu, began = cpu_seconds_of_tree(postmaster), time.process_time(), time.monotonic()
        delivered = 0
        while delivered < total:
            handled = await poller.poll()
            delivered += handled
            if handled == 0:
                remaining = await conn.fetchval("SELECT count(*) FROM channel_due")
                if remaining == 0:
                    break
                await asyncio.sleep(0.01)
        elapsed = time.monotonic() - began
        worker_cpu = time.process_time() - cpu
        pg_cpu = cpu_seconds_of_tree(postmaster) - pg_cpu
        states = dict(await conn.fetch("SELECT state, count(*) FROM channel_outbox GROUP BY state"))
        await poller.close()
        await pool.close()
        await conn.close()

        log("")
        log(f"| ingest ({channel}), closed loop x{args.concurrency} | req/s | p50 ms | p95 ms |")
        log("|---|---|---|---|")
        log(f"| runtime: verify, dedupe, store, enqueue | {ingest['rps']:.0f} |"
            f" {ingest['p50_ms']:.1f} | {ingest['p95_ms']:.1f} |")  # fmt: skip
        log(f"| bare: verify only | {baseline['rps']:.0f} | {baseline['p50_ms']:.1f} |"
            f" {baseline['p95_ms']:.1f} |")  # fmt: skip
        log(f"accepted {accepted} (+{warm} warm-up), failed"
            f" {sum(int(r['failed']) for r in runtime_runs)}; stored inbound messages {stored},"
            f" reply jobs {jobs}")  # fmt: skip
        log("")
        log(f"| delivery ({channel}) | msgs/s | worker CPU s | PostgreSQL CPU s | wall s |")
        log("|---|---|---|---|---|")
        log(f"| {total} deliveries, {len(conversations)} conversations, "
            f"x{args.delivery_concurrency} | {total / elapsed:.0f} | {worker_cpu:.1f} |"
            f" {pg_cpu:.1f} | {elapsed:.1f} |")  # fmt: skip
        log(f"outcome: {states}")
        log("")
        log(f"robustness ({channel}): {args.attacks} forged webhooks -> {forged_ok} accepted;"
            f" {args.attacks} copies of one update -> stored {duplicate_stored} time(s)"
        )  # fmt: skip
    finally:
        for process in processes:
            process.stop()
        stack.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--serve-standins":
        serve_standins(int(sys.argv[2]), sys.argv[3])
    else:
        asyncio.run(main())
