"""Runtime API benchmark: seed 1,000 creators / 50,000 end users / 1,000,000 messages, then
measure one tenant's conversations and messages through the API.

    .venv/bin/python bench/api_bench.py [--messages 1000000] [--duration 30]

1. latency under realistic load: 200 simulated users, each sending about one request a
   second (open loop, Poisson arrivals, latency measured from the scheduled send time so a
   slow server cannot hide queueing): p50/p95/p99;
2. capacity: closed loop at fixed concurrency (64): requests per second of the runtime and
   of a bare uvicorn + asyncpg app running the same SQL, in the same run;
3. RLS cost: the runtime's transaction (SET LOCAL tenant, the two page queries) under RLS
   as the runtime role versus a plain WHERE on creator_id as a role that bypasses RLS,
   driven by pgbench so that the figure is PostgreSQL's cost, not a Python client's.

The servers are pinned to CPU 0 and the load generator to CPU 1 (taskset /
sched_setaffinity); PostgreSQL and Redis float. The load generator is a small raw
HTTP/1.1 keep-alive client on uvloop, so it spends little CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from argon2 import PasswordHasher

from coachops_crds import rls
from coachops_crds.constants import program_id as derived_program_id
from coachops_crds.constants import tenant_id
from coachops_devstack.ports import free_port
from coachops_devstack.postgres import pg_binary
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import start_stack
from coachops_runtime.auth.keys import generate_key_file

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password 123"
STATUSES: dict[int, int] = {}


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- seeding


async def seed(dsn: str, creators: int, end_users: int, messages: int) -> dict[str, object]:
    """COPY everything in as the superuser (COPY FROM does not work under RLS)."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    names = [f"bench-{i:04d}" for i in range(creators)]
    ids = [tenant_id(n) for n in names]
    plan = json.dumps(
        {"requestsPerSecond": 10_000, "messagesPerMonth": 10_000_000, "maxEndUsers": 100_000}
    )
    await conn.copy_records_to_table(
        "creators",
        columns=["creator_id", "name", "display_name", "contact_email", "plan", "isolation"],
        records=[
            (i, n, n, f"{n}@example.com", plan, "shared") for n, i in zip(names, ids, strict=True)
        ],
    )
    programs = [derived_program_id(n, "main") for n in names]
    spec = json.dumps({"title": "Main", "persona": {"name": "Coach"}})
    await conn.copy_records_to_table(
        "programs",
        columns=["program_id", "creator_id", "name", "title", "spec"],
        records=[(p, c, "main", "Main", spec) for p, c in zip(programs, ids, strict=True)],
    )
    per_creator = end_users // creators
    users: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []  # (user, creator, program)
    for c, p in zip(ids, programs, strict=True):
        users += [(uuid.uuid4(), c, p) for _ in range(per_creator)]
    await conn.copy_records_to_table(
        "end_users",
        columns=["end_user_id", "creator_id", "email", "display_name", "status"],
        records=[
            (u, c, f"u{k}@example.com", f"User {k}", "active") for k, (u, c, _p) in enumerate(users)
        ],
    )
    await conn.copy_records_to_table(
        "enrolments",
        columns=["creator_id", "end_user_id", "program_id"],
        records=[(c, u, p) for u, c, p in users],
    )
    conversations = [(uuid.uuid4(), u, c, p) for u, c, p in users]
    await conn.copy_records_to_table(
        "conversations",
        columns=["conversation_id", "creator_id", "program_id", "end_user_id", "last_message_at"],
        records=[(v, c, p, u, now) for v, u, c, p in conversations],
    )
    per_conversation = messages // len(conversations)
    rng = random.Random(7)
    bodies = [
        "How did today go?",
        "I ran 3 km and felt great.",
        "Slept badly again.",
        "Let's plan tomorrow's session.",
        "Drink some water and stretch.",
    ]

    def batch(
        part: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]],
    ) -> list[tuple[object, ...]]:
        records: list[tuple[object, ...]] = []
        for v, u, c, p in part:
            start = now - timedelta(days=30)
            for k in range(per_conversation):
                inbound = k % 2 == 0
                records.append(
                    (
                        c,
                        v,
                        p,
                        u,
                        "in" if inbound else "out",
                        "end_user" if inbound else "ai",
                        "check_in" if k % 10 == 1 else "chat",
                        rng.choice(bodies),
                        start + timedelta(minutes=k * 37),
                    )
                )
        return records

    columns = [
        "creator_id",
        "conversation_id",
        "program_id",
        "end_user_id",
        "direction",
        "author",
        "kind",
        "body",
        "created_at",
    ]
    step = 5_000
    for offset in range(0, len(conversations), step):
        await conn.copy_records_to_table(
            "messages", columns=columns, records=batch(conversations[offset : offset + step])
        )
    # The benchmarked tenant's creator account.
    await conn.execute(
        "INSERT INTO creator_accounts (creator_id, email, password_hash, email_verified_at)"
        " VALUES ($1, $2, $3, now())",
        ids[0],
        f"{names[0]}@example.com",
        PasswordHasher().hash(PASSWORD),
    )
    await conn.execute("ANALYZE")
    total = await conn.fetchval("SELECT count(*) FROM messages")
    await conn.close()
    target = [v for v, _u, c, _p in conversations if c == ids[0]]
    log(
        f"seeded {creators} creators, {len(users)} end users, {total} messages"
        f" in {time.monotonic() - started:.1f} s"
    )
    return {
        "tenant": ids[0],
        "email": f"{names[0]}@example.com",
        "conversations": target,
        "seconds": time.monotonic() - started,
    }


# ---------------------------------------------------------------- load generation


class Connection:
    """One keep-alive HTTP/1.1 connection; enough HTTP for our own servers."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, headers: str) -> int:
        for _attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{headers}\r\n"
            self.writer.write(request.encode())
            try:
                status_line = await self.reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                break
            # The server closed an idle keep-alive connection: reconnect once.
            self.writer.close()
            self.writer = None
        assert self.reader is not None  # connected by the loop above
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_loop(
    port: int, paths: Callable[[], str], headers: str, users: int, rate: float, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def user(seed_: int) -> None:
        nonlocal errors
        rng = random.Random(seed_)
        conn = Connection("127.0.0.1", port)
        scheduled = time.perf_counter() + rng.random() / rate
        while scheduled < deadline:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await conn.request(paths(), headers)
            latencies.append(time.perf_counter() - scheduled)  # from the intended send time
            if status != 200:
                errors += 1
                STATUSES[status] = STATUSES.get(status, 0) + 1
            scheduled += rng.expovariate(rate)

    await asyncio.gather(*(user(i) for i in range(users)))
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "errors": errors,
        "p50": percentile(latencies, 0.50) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


async def closed_loop(
    port: int, paths: Callable[[], str], headers: str, concurrency: int, seconds: float
) -> dict[str, float]:
    count = 0
    errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count, errors
        conn = Connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            status = await conn.request(paths(), headers)
            latencies.append(time.perf_counter() - begin)
            count += 1
            if status != 200:
                errors += 1
                STATUSES[status] = STATUSES.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "rps": count / elapsed,
        "errors": errors,
        "p50": percentile(latencies, 0.5) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
    }


# ---------------------------------------------------------------- RLS cost

_PAGE = (
    "SELECT message_id, body, created_at FROM messages WHERE {tenant}conversation_id ="
    " (SELECT id FROM bench_conversations WHERE i = :i) ORDER BY message_id LIMIT 50;\n"
    "SELECT conversation_id, last_message_at FROM conversations {where}"
    " ORDER BY last_message_at DESC, conversation_id DESC LIMIT 20;\n"
)
# What every tenant table's runtime policy said before migration 0003, for reference.
_LEGACY_PREDICATE = "creator_id = (SELECT current_tenant_id())"


def _pgbench(dsn: str, script: Path, seconds: float) -> float:
    """Transactions per second of ``script``: pgbench (C, prepared statements, 8 clients on
    one thread pinned to CPU 1), so the figure is the server's cost, not a Python client's."""
    url = urlsplit(dsn)
    result = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            pg_binary("pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            "8",
            "-j",
            "1",
            "-T",
            str(int(seconds)),
            "-f",
            str(script),
            "-h",
            url.hostname or "127.0.0.1",
            "-p",
            str(url.port),
            "-U",
            url.username or "",
            url.path.lstrip("/"),
        ],
        env={**os.environ, "PGPASSWORD": url.password or ""},
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("tps"):
            return float(line.split()[2])
    raise RuntimeError(f"pgbench printed no tps: {result.stdout}")


async def rls_cost(
    superuser_dsn: str,
    runtime_dsn: str,
    tenant: uuid.UUID,
    conversations: list[uuid.UUID],
    workdir: Path,
    seconds: float,
    rounds: int = 5,
) -> dict[str, Any]:
    """The runtime's transaction (tenant set with SET LOCAL, the two page queries) under
    RLS as the runtime role, versus the same with a plain WHERE as a role that bypasses RLS;
    after a warm-up, interleaved in rotating order, median of ``rounds``."""
    conn = await asyncpg.connect(superuser_dsn)
    try:
        await conn.execute("CREATE TABLE bench_conversations (i int PRIMARY KEY, id uuid)")
        await conn.copy_records_to_table(
            "bench_conversations", records=list(enumerate(conversations))
        )
        await conn.execute("GRANT SELECT ON bench_conversations TO coachops_runtime")
    finally:
        await conn.close()
    header = (
        f"\\set i random(0, {len(conversations) - 1})\n"
        f"BEGIN;\nSELECT set_config('coachops.tenant_id', '{tenant}', true);\n"
    )
    scripts = {
        "rls": header + _PAGE.format(tenant="", where="") + "COMMIT;\n",
        "plain": header
        + _PAGE.format(
            tenant=f"creator_id = '{tenant}' AND ", where=f"WHERE creator_id = '{tenant}'"
        )
        + "COMMIT;\n",
    }
    paths = {}
    for name, text in scripts.items():
        paths[name] = workdir / f"rls-{name}.sql"
        paths[name].write_text(text)

    async def set_runtime_policy(predicate: str) -> None:
        conn = await asyncpg.connect(superuser_dsn)
        try:
            for table in ("messages", "conversations"):
                await conn.execute(
                    f"ALTER POLICY tenant_context ON {table} USING ({predicate})"
                    f" WITH CHECK ({predicate})"
                )
        finally:
            await conn.close()

    async def run(variant: str) -> float:
        if variant == "legacy":
            await set_runtime_policy(_LEGACY_PREDICATE)
        try:
            dsn = superuser_dsn if variant == "plain" else runtime_dsn
            script = paths["plain" if variant == "plain" else "rls"]
            return await asyncio.to_thread(_pgbench, dsn, script, seconds)
        finally:
            if variant == "legacy":
                await set_runtime_policy(rls.POLICIES[0].predicate)

    variants = ["rls", "plain", "legacy"]
    for variant in variants:  # warm-up: caches and plans, not counted
        await run(variant)
    samples: dict[str, list[float]] = {variant: [] for variant in variants}
    for round_ in range(rounds):  # interleaved, the order rotating every round
        for variant in variants[round_ % 3 :] + variants[: round_ % 3]:
            samples[variant].append(await run(variant))
    results: dict[str, Any] = {key: sorted(v)[len(v) // 2] for key, v in samples.items()}
    conn = await asyncpg.connect(runtime_dsn)
    async with conn.transaction():
        await conn.execute("SELECT set_config('coachops.tenant_id', $1, true)", str(tenant))
        plan = await conn.fetch(
            "EXPLAIN ANALYZE SELECT message_id, body, created_at FROM messages"
            " WHERE conversation_id = $1 ORDER BY message_id LIMIT 50",
            conversations[0],
        )
    await conn.close()
    results["plan"] = "\n".join(r[0] for r in plan)
    return results


# ---------------------------------------------------------------- main


def server(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> ManagedProcess:
    return ManagedProcess(name, ["taskset", "-c", "0", *argv], workdir / f"{name}.log", env=env)


async def wait_http(url: str, process: ManagedProcess) -> None:
    async def ok() -> bool:
        async with httpx.AsyncClient(timeout=1) as http:
            return (await http.get(url)).status_code == 200

    await process.wait_ready(ok, timeout=60)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creators", type=int, default=1_000)
    parser.add_argument("--end-users", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    stack = await start_stack(with_cluster=False)
    processes: list[ManagedProcess] = []
    try:
        pg = stack.postgres
        seeded = await seed(pg.superuser_dsn, args.creators, args.end_users, args.messages)
        tenant: uuid.UUID = seeded["tenant"]  # type: ignore[assignment]
        conversations: list[uuid.UUID] = seeded["conversations"]  # type: ignore[assignment]
        keys = stack.workdir / "jwt-keys"
        generate_key_file(keys, "bench")
        port = free_port()
        env = {
            "COACHOPS_ENVIRONMENT": "development",
            "COACHOPS_DATABASE_URL": pg.runtime_dsn,
            "COACHOPS_REDIS_URL": stack.redis.url,
            "COACHOPS_JWT_KEYS_DIR": str(keys),
            "COACHOPS_LOG_LEVEL": "WARNING",
            "KUBECONFIG": "",
        }
        runtime = server(
            "runtime",
            [sys.executable, "-m", "coachops_runtime", "--port", str(port)],
            env,
            stack.workdir,
        )
        runtime.start()
        processes.append(runtime)
        await wait_http(f"http://127.0.0.1:{port}/livez", runtime)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            login = await http.post(
                "/v1/auth/login", json={"email": seeded["email"], "password": PASSWORD}
            )
            token = login.json()["access_token"]
        headers = f"Authorization: Bearer {token}\r\n"
        rng = random.Random(1)

        def api_path() -> str:
            if rng.random() < 0.8:
                return f"/v1/conversations/{rng.choice(conversations)}/messages?limit=50"
            return "/v1/conversations?limit=20"

        def messages_path() -> str:
            return f"/v1/conversations/{rng.choice(conversations)}/messages?limit=50"

        # The load generator runs on the other core from here on.
        os.sched_setaffinity(0, {1})
        await closed_loop(port, api_path, headers, 8, 3)  # warm-up
        log("open loop ...")
        latency = await open_loop(port, api_path, headers, args.users, 1.0, args.duration)
        bare_port = free_port()
        bare = server(
            "bare",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--app-dir",
                str(ROOT / "bench"),
            ],
            {"BARE_DSN": pg.runtime_dsn},
            stack.workdir,
        )
        os.sched_setaffinity(0, {0, 1})
        bare.start()
        processes.append(bare)
        os.sched_setaffinity(0, {1})

        async def bare_ok() -> bool:
            try:
                conn = Connection("127.0.0.1", bare_port)
                return (
                    await conn.request(f"/?tenant={tenant}&conversation={conversations[0]}", "")
                    == 200
                )
            except OSError:
                return False

        await bare.wait_ready(bare_ok, timeout=60)

        def bare_path() -> str:
            return f"/?tenant={tenant}&conversation={rng.choice(conversations)}"

        await closed_loop(bare_port, bare_path, "", 8, 3)
        # Interleave the runtime and the baseline (A/B/A/B...) so that a noisy neighbour
        # hurts both alike; report the median round of each.
        log(f"closed loop, runtime and bare interleaved, {args.rounds} rounds ...")
        runtime_runs, bare_runs = [], []
        share = args.duration / 2 / args.rounds
        for _ in range(args.rounds):
            runtime_runs.append(
                await closed_loop(port, messages_path, headers, args.concurrency, share)
            )
            bare_runs.append(await closed_loop(bare_port, bare_path, "", args.concurrency, share))
        capacity = median_run(runtime_runs)
        baseline = median_run(bare_runs)
        ratios = sorted(r["rps"] / b["rps"] for r, b in zip(runtime_runs, bare_runs, strict=True))
        for process in list(processes):
            process.stop()
            processes.remove(process)
        os.sched_setaffinity(0, {0, 1})
        log("RLS cost ...")
        rls_figures = await rls_cost(
            pg.superuser_dsn, pg.runtime_dsn, tenant, conversations, stack.workdir, 5
        )

        print()
        print(
            f"seeding: {args.creators} creators, {args.end_users} end users,"
            f" {args.messages} messages in {seeded['seconds']:.1f} s (COPY)"
        )
        print(
            f"machine: {os.cpu_count()} CPUs; runtime/bare server pinned to CPU 0,"
            " load generator to CPU 1, PostgreSQL and Redis unpinned;"
            f" load average at the end {os.getloadavg()[0]:.1f}"
        )
        print()
        print("| scenario | req/s | p50 ms | p95 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|")
        print(
            f"| open loop, {args.users} users x ~1 req/s"
            " (80% messages page, 20% conversations page)"
            f" | {latency['rps']:.0f} | {latency['p50']:.1f} | {latency['p95']:.1f}"
            f" | {latency['p99']:.1f} | {latency['errors']:.0f} |"
        )
        print(
            f"| closed loop x{args.concurrency}, runtime messages page | {capacity['rps']:.0f}"
            f" | {capacity['p50']:.1f} | {capacity['p95']:.1f} | - | {capacity['errors']:.0f} |"
        )
        print(
            f"| closed loop x{args.concurrency}, bare uvicorn+asyncpg, same SQL"
            f" | {baseline['rps']:.0f} | {baseline['p50']:.1f} | {baseline['p95']:.1f} | - |"
            f" {baseline['errors']:.0f} |"
        )
        print()
        if STATUSES:
            print(f"non-200 answers: {STATUSES}")
        print(
            f"capacity ratio runtime/bare: median of per-round ratios"
            f" {ratios[len(ratios) // 2]:.0%}; per round (sorted):"
            f" {', '.join(f'{r:.0%}' for r in ratios)}; ratio of medians"
            f" {capacity['rps'] / baseline['rps']:.0%}"
        )
        print()
        print(
            "| RLS cost: BEGIN + SET LOCAL + both page queries + COMMIT (pgbench, 8 clients,"
            " median of 5 interleaved 5 s runs) | transactions/s | cost vs plain WHERE |"
        )
        print("|---|---|---|")
        plain = rls_figures["plain"]
        for label, key in (
            ("plain WHERE creator_id = ..., role that bypasses RLS", "plain"),
            ("RLS, runtime role (tenant_context policy)", "rls"),
            ("RLS, function-based policy before migration 0003 (reference)", "legacy"),
        ):
            value = rls_figures[key]
            print(f"| {label} | {value:.0f} | {plain / value - 1:+.1%} |")
        print()
        print("EXPLAIN ANALYZE of the messages page under RLS:")
        print(rls_figures["plan"])
    finally:
        for process in processes:
            process.stop()
        stack.stop()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
