"""Benchmark: apply N Creators at once to the real stack and time until all are Ready.

    .venv/bin/python bench/creators_bench.py            # N = 100 and 1000
    .venv/bin/python bench/creators_bench.py -n 100     # one size
    .venv/bin/python bench/creators_bench.py -n 1000 --programs
        # N Creators alone, then (a fresh stack) N Creators + one CoachingProgram each

With ``--programs`` each Creator also gets one CoachingProgram on the default models, which
the Ollama of the run already holds (no knowledge, web channel only): the bench posts a
Creator's program as soon as its watch sees the Creator's NamespaceReady (the namespace
exists and its quota counts programs; an apply before that is refused), and the clock runs
until every Creator and every program is Ready. The Creators-only run comes first, in the
same invocation, as the baseline.

Each size gets a fresh stack (control plane, PostgreSQL, Redis, ChromaDB) and a fresh
operator process (``python -m coachops_operator --standalone``) running as its
ServiceAccount (manifests/operator/rbac.yaml, a bearer token). The Creators are shared
tenants, created through the API with 32 requests in flight. Reported per size: seconds
from the first create until every Creator is Ready, Creators reconciled per second, the
reconciles the operator counted (first passes and retries), and the operator's peak RSS
(VmHWM from /proc). The goal on a 2-core machine: 1,000 Ready in <= 60 s, <= 250 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from kubernetes_asyncio import client, config

from coachops_crds import constants as c
from coachops_devstack.controlplane import controlplane_bin
from coachops_devstack.crds import install_crds
from coachops_devstack.kubeconfig import service_account_kubeconfig
from coachops_devstack.ollama import (
    EMBEDDING_PARAMETERS,
    OllamaStack,
    create_model,
    start_ollama_stack,
)
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_devstack.stack import Stack, start_stack


@dataclass
class Result:
    n: int
    programs: bool
    seconds: float
    reconciles: float
    peak_rss_mb: float
    cpu_seconds: float

    def row(self) -> str:
        what = "+ programs" if self.programs else "Creators"
        return (
            f"| {self.n:>5} | {what:<10} | {self.seconds:>8.1f} | {self.n / self.seconds:>10.1f} |"
            f" {self.reconciles:>10.0f} | {self.peak_rss_mb:>8.0f} | {self.cpu_seconds:>7.1f} |"
        )


HEADER = (
    "|     N | objects    | Ready (s) | Creators/s | reconciles | peak RSS (MB) | CPU (s) |\n"
    "|------:|:-----------|---------:|-----------:|-----------:|--------:|--------:|"
)


def kubectl(stack: Stack, *args: str) -> None:
    assert stack.cluster is not None
    subprocess.run(
        [str(controlplane_bin("kubectl")), f"--kubeconfig={stack.cluster.kubeconfig}", *args],
        check=True,
        capture_output=True,
    )


async def warm_quota_controller(api: client.ApiClient) -> None:
    """A fresh controller manager counts CoachingPrograms only once it has rediscovered
    resources (every 30 s); a real cluster has long done that, so the bench waits."""
    core = client.CoreV1Api(api)
    ns = f"warmup-{uuid.uuid4().hex[:6]}"
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    hard = {f"count/{c.PROGRAM_PLURAL}.{c.GROUP}": "1"}
    for attempt in range(40):
        name = f"q{attempt}"
        await core.create_namespaced_resource_quota(
            ns,
            client.V1ResourceQuota(
                metadata=client.V1ObjectMeta(name=name), spec=client.V1ResourceQuotaSpec(hard=hard)
            ),
        )
        await asyncio.sleep(3)
        quota = await core.read_namespaced_resource_quota(name, ns)
        if quota.status and quota.status.used and set(hard) <= set(quota.status.used):
            break
        await core.delete_namespaced_resource_quota(name, ns)
    await core.delete_namespace(ns)


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU of every process in one process group, reaped children included."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds() -> float:
    """CPU of this process (the client that creates and watches the Creators)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def components(stack: Stack, operator: ManagedProcess) -> dict[str, int]:
    assert stack.cluster is not None
    found = {p.name: p.pid for p in stack.cluster.processes}
    for name, store in (
        ("postgres", stack.postgres),
        ("redis", stack.redis),
        ("chroma", stack.chroma),
    ):
        assert store.process is not None
        found[name] = store.process.pid
    found["operator"] = operator.pid
    return found


class BenchClient:
    """The bench's own calls while it measures: plain aiohttp and JSON, so that the client
    takes as little of the two cores as it can (the admin's client certificate)."""

    def __init__(self, stack: Stack) -> None:
        assert stack.cluster is not None
        cluster = stack.cluster
        context = ssl.create_default_context(cafile=str(cluster.pki.ca.cert))
        context.load_cert_chain(str(cluster.admin.cert), str(cluster.admin.key))
        self.server = cluster.server
        self.base = f"{cluster.server}/apis/{c.GROUP}/{c.VERSION}/{c.CREATOR_PLURAL}"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=64),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        )

    async def create(self, name: str) -> None:
        body = {
            "apiVersion": c.API_VERSION,
            "kind": c.CREATOR_KIND,
            "metadata": {"name": name},
            "spec": {"displayName": name, "contact": {"email": f"{name}@example.com"}},
        }
        async with self.session.post(self.base, json=body) as response:
            if response.status != 201:
                raise RuntimeError(f"create {name}: {response.status} {await response.text()}")

    async def create_program(self, creator: str) -> None:
        namespace = c.creator_namespace(creator)
        url = f"{self.server}/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PROGRAM_PLURAL}"
        body = {
            "apiVersion": c.API_VERSION,
            "kind": c.PROGRAM_KIND,
            "metadata": {"name": "coach", "namespace": namespace},
            "spec": {"title": "Bench coach", "persona": {"name": "Robin"}},
        }
        async with self.session.post(url, json=body) as response:
            if response.status not in (201, 409):
                raise RuntimeError(
                    f"program of {creator}: {response.status} {await response.text()}"
                )

    async def watch_ready(
        self, ready: set[str], url: str | None = None, namespaced: set[str] | None = None
    ) -> None:
        """Keep ``ready`` equal to the names of the objects whose Ready condition is True;
        add a Creator whose NamespaceReady is True to ``namespaced``."""
        async with self.session.get(url or self.base, params={"watch": "true"}) as response:
            response.raise_for_status()
            async for line in response.content:
                obj = json.loads(line)["object"]
                meta = obj["metadata"]
                name = f"{meta.get('namespace', '')}/{meta['name']}"
                conditions = obj.get("status", {}).get("conditions", [])
                if any(x["type"] == "Ready" and x["status"] == "True" for x in conditions):
                    ready.add(name)
                else:
                    ready.discard(name)
                if namespaced is not None and any(
                    x["type"] == "NamespaceReady" and x["status"] == "True" for x in conditions
                ):
                    namespaced.add(meta["name"])

    async def close(self) -> None:
        await self.session.close()


async def apiserver_requests(api: client.ApiClient) -> dict[tuple[str, str], float]:
    """apiserver_request_total summed by (verb, resource), from the apiserver's metrics."""
    text, _, _ = await api.call_api(
        "/metrics", "GET", response_types_map={200: "str"}, auth_settings=["BearerToken"],
        _return_http_data_only=False, _preload_content=True,
    )  # fmt: skip
    counts: dict[tuple[str, str], float] = {}
    for line in str(text).splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line.split("{", 1)[1].split("}", 1)[0].split(",")
        )
        key = (labels.get("verb", "").strip('"'), labels.get("resource", "").strip('"'))
        counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


async def reconciles(port: int) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('coachops_operator_reconciles_total{kind="Creator"')
    )


async def print_steps(port: int) -> None:
    """Mean duration of each reconcile step, from the operator's own histograms."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for kind, target in (("_sum{", sums), ("_count{", counts)):
            if line.startswith("coachops_operator_step_duration_seconds" + kind):
                step = line.split('step="', 1)[1].split('"', 1)[0]
                target[step] = float(line.rsplit(" ", 1)[1])
    steps = ", ".join(f"{k} {sums[k] / counts[k]:.2f} s" for k in sums if counts.get(k))
    print(f"  mean step durations: {steps}", flush=True)


async def model_server(workdir: Path) -> tuple[OllamaStack, dict[str, str]]:
    """Ollama holding the default chat and embedding models, and the operator's settings."""
    models = await start_ollama_stack(workdir, pull_chat=True, instruct=False)
    async with httpx.AsyncClient(base_url=models.base_url, timeout=300) as http:
        name = f"{models.registry_address}/coachops/minilm:latest"
        await create_model(http, name, models.embedding, parameters=EMBEDDING_PARAMETERS)
    return models, {
        "COACHOPS_OPERATOR_OLLAMA_URL": models.base_url,
        "COACHOPS_OPERATOR_MODEL_REGISTRY": models.registry_address,
        "COACHOPS_OPERATOR_MODEL_REGISTRY_INSECURE": "true",
    }


async def run(n: int, programs: bool) -> Result:
    stack = await start_stack()
    operator: ManagedProcess | None = None
    ollama, ollama_env = await model_server(stack.workdir / "ollama")
    try:
        assert stack.cluster is not None
        install_crds(controlplane_bin("kubectl"), stack.cluster.kubeconfig)
        api = await config.new_client_from_config(config_file=str(stack.cluster.kubeconfig))
        await warm_quota_controller(api)
        # The operator runs as its ServiceAccount with a bearer token, as in a cluster, and
        # not with the admin's client certificate: the apiserver verifies a certificate
        # chain on every request (ECDSA, ~10 % of its CPU here) but caches token reviews.
        kubectl(stack, "apply", "-f", str(REPO_ROOT / "manifests" / "operator" / "rbac.yaml"))
        operator_kubeconfig = await service_account_kubeconfig(
            stack.cluster.kubeconfig, "coachops-system", "coachops-operator", stack.workdir
        )
        metrics_port = free_port()
        operator = ManagedProcess(
            "operator",
            [
                sys.executable,
                "-m",
                "coachops_operator",
                "--standalone",
                "--host=127.0.0.1",
                f"--liveness-port={free_port()}",
                f"--metrics-port={metrics_port}",
            ],
            stack.workdir / "operator.log",
            env={
                "KUBECONFIG": str(operator_kubeconfig),
                "COACHOPS_OPERATOR_DATABASE_URL": stack.postgres.operator_dsn,
                "COACHOPS_OPERATOR_REDIS_URL": stack.redis.url,
                "COACHOPS_OPERATOR_CHROMA_URL": stack.chroma.url,
                "COACHOPS_OPERATOR_DB_POOL_SIZE": "20",
                **ollama_env,
            },
        )
        operator.start()
        await asyncio.sleep(3)
        bench = BenchClient(stack)
        names = [f"bench-{i:04d}" for i in range(n)]
        gate = asyncio.Semaphore(32)

        async def create(name: str) -> None:
            async with gate:
                await bench.create(name)

        groups = components(stack, operator)
        cpu_before = {name: group_cpu_seconds(pid) for name, pid in groups.items()}
        client_before = client_cpu_seconds()
        busy_before, total_before = machine_busy_seconds()
        requests_before = await apiserver_requests(api)
        # A watch, not repeated LISTs: listing 1,000 Creators twice a second would cost the
        # apiserver more than some of what is being measured.
        ready: set[str] = set()
        namespaced: set[str] = set()
        ready_programs: set[str] = set()
        posted: set[str] = set()
        programs_url = f"{bench.server}/apis/{c.GROUP}/{c.VERSION}/{c.PROGRAM_PLURAL}"

        def watch() -> asyncio.Task[None]:
            return asyncio.create_task(bench.watch_ready(ready, namespaced=namespaced))

        def watch_programs() -> asyncio.Task[None]:
            return asyncio.create_task(bench.watch_ready(ready_programs, programs_url))

        watcher = watch()
        program_watcher = watch_programs() if programs else None
        program_posts: list[asyncio.Task[None]] = []
        started = time.monotonic()
        await asyncio.gather(*(create(name) for name in names))
        created = time.monotonic() - started
        print(f"  N={n}: {n} Creators created in {created:.1f} s", flush=True)
        last_report = 0.0
        while len(ready) < n or (programs and len(ready_programs) < n):
            elapsed = time.monotonic() - started
            if programs:
                for name in namespaced - posted:
                    posted.add(name)
                    program_posts.append(asyncio.create_task(bench.create_program(name)))
            if elapsed - last_report >= 5:
                print(
                    f"  N={n}: {len(ready)} Creators and {len(ready_programs)} programs Ready"
                    f" after {elapsed:.0f} s",
                    flush=True,
                )
                last_report = elapsed
            if not operator.running():
                raise RuntimeError(f"the operator died:\n{operator.log_tail()}")
            if watcher.done():
                watcher.result()  # raises what ended the watch
                watcher = watch()
            if program_watcher is not None and program_watcher.done():
                program_watcher.result()
                program_watcher = watch_programs()
            for post in [p for p in program_posts if p.done()]:
                post.result()  # raises a refused create
                program_posts.remove(post)
            if elapsed > 600:
                raise RuntimeError(f"only {len(ready)}/{n} Ready after 600 s")
            await asyncio.sleep(0.1)
        watcher.cancel()
        if program_watcher is not None:
            program_watcher.cancel()
        seconds = time.monotonic() - started
        busy, total = machine_busy_seconds()
        spent = {name: group_cpu_seconds(pid) - cpu_before[name] for name, pid in groups.items()}
        spent["bench client"] = client_cpu_seconds() - client_before
        print(
            f"  N={n}: machine busy {(busy - busy_before) / (total - total_before):.0%};"
            " CPU seconds by component: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(spent.items(), key=lambda kv: -kv[1])),
            flush=True,
        )
        requests = await apiserver_requests(api)
        writes = {
            key: value - requests_before.get(key, 0.0)
            for key, value in requests.items()
            if key[0] in ("POST", "PATCH", "PUT", "APPLY", "DELETE", "UPDATE", "CREATE")
        }
        print(
            f"  N={n}: apiserver writes per Creator: "
            + ", ".join(
                f"{verb} {resource} {count / n:.1f}"
                for (verb, resource), count in sorted(writes.items(), key=lambda kv: -kv[1])
                if count / n >= 0.05
            ),
            flush=True,
        )
        await print_steps(metrics_port)
        result = Result(
            n,
            programs,
            seconds,
            await reconciles(metrics_port),
            rss_peak_mb(operator.pid),
            cpu_seconds(operator.pid),
        )
        await api.close()
        await bench.close()
        return result
    finally:
        if operator is not None:
            operator.stop()
        ollama.stop()
        stack.stop()


async def main(sizes: list[int], programs: bool) -> None:
    results = []
    for n in sizes:
        for with_programs in (False, True) if programs else (False,):
            what = "Creators + programs" if with_programs else "Creators"
            print(f"N = {n} ({what}): starting a fresh stack ...", flush=True)
            results.append(await run(n, with_programs))
    print()
    print(HEADER)
    for result in results:
        print(result.row())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, action="append", help="number of Creators (repeatable)")
    parser.add_argument(
        "--programs",
        action="store_true",
        help="after the Creators-only run, run again with one CoachingProgram per Creator",
    )
    args = parser.parse_args()
    asyncio.run(main(args.n or [100, 1000], args.programs))
