"""Measure the local Ollama stack: model sizes, load times, pull, chat and embedding speed,
and chat tokens per second of SmolLM2 and the tiny model, per thread count, for two Ollama
builds side by side (by default the build without SIMD and the native one).

    .venv/bin/python bench/ollama_bench.py [--builds none,native] [--threads 1,2]
                                           [--runs 5] [--tokens 128]

Each build (scripts/build-ollama.sh with COACHOPS_OLLAMA_MARCH set to it; built first if
the cache lacks it) gets its own stack (coachops_devstack.ollama) with an unthrottled
registry, all running at once; the timed chats alternate between the builds, so load from
other work on the machine falls on all of them alike. Throughput comes from Ollama's own
timings (eval_count / eval_duration), after one untimed chat that loads the model with
that thread count. The details table (sizes, load, pull, embed) is for the last build.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from coachops_devstack.ollama import OllamaStack, build_ollama, start_ollama_stack

SENTENCES = [
    "I walked every morning this week and I feel great.",
    "How do I keep going when motivation drops?",
    "My goal is to sleep eight hours a night.",
    "The quarterly report is due on Friday.",
] * 4
PROMPT = "Give me a plan for a healthier week."


@dataclass
class Build:
    """One Ollama build under test and its running stack."""

    march: str
    stack: OllamaStack
    rates: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    features: str = ""  # what ggml logged, read before the stack (and its logs) goes

    def read_features(self) -> None:
        found = self.stack.cpu_features()
        self.features = " ".join(n for n, value in found.items() if value == "1") or "(none)"


# ---------------------------------------------------------------------- throughput


async def chat(
    client: httpx.AsyncClient, model: str, tokens: int, threads: int | None, seed: int = 0
) -> dict[str, Any]:
    """One chat; ``threads=None`` keeps the model's own num_thread."""
    options = {"num_predict": tokens, "seed": seed}
    if threads is not None:
        options["num_thread"] = threads
    response = await client.post(
        "/api/chat",
        json={
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": False,
            "options": options,
        },
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def throughput(
    builds: list[Build], models: dict[str, str], threads: list[int], runs: int, tokens: int
) -> None:
    """Fill each build's ``rates[(model label, threads)]`` with tokens/s per run."""
    clients = {b.march: httpx.AsyncClient(base_url=b.stack.base_url, timeout=900) for b in builds}
    try:
        for build in builds:  # the tiny model is only in the registry until pulled
            response = await clients[build.march].post(
                "/api/pull",
                json={"model": build.stack.chat_model, "insecure": True, "stream": False},
            )
            response.raise_for_status()
        for label, attribute in models.items():
            for n in threads:
                for build in builds:
                    await chat(clients[build.march], getattr(build.stack, attribute), 1, n)
                for run in range(runs):
                    for build in builds:
                        model = getattr(build.stack, attribute)
                        result = await chat(clients[build.march], model, tokens, n, seed=run)
                        rate = result["eval_count"] / (result["eval_duration"] / 1e9)
                        build.rates.setdefault((label, n), []).append(rate)
                for build in builds:  # free the memory before the next model
                    await clients[build.march].post(
                        "/api/generate",
                        json={"model": getattr(build.stack, attribute), "keep_alive": 0},
                    )
    finally:
        for client in clients.values():
            await client.aclose()


def throughput_table(builds: list[Build], tokens: int, runs: int) -> list[str]:
    """One row per model and thread count; speed-ups are against the first build."""
    first = builds[0].march
    head = ["model", "threads"] + [f"{b.march} (tok/s)" for b in builds]
    head += [f"{b.march} / {first}" for b in builds[1:]]
    rows = [head]
    for key in builds[0].rates:
        medians = [statistics.median(b.rates[key]) for b in builds]
        cells = [key[0], str(key[1])]
        for build, median in zip(builds, medians, strict=True):
            values = build.rates[key]
            cells.append(f"{median:.0f} ({min(values):.0f}-{max(values):.0f})")
        cells += [f"{median / medians[0]:.1f}x" for median in medians[1:]]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"chat generation, {tokens} tokens, median (min-max) of {runs} runs"]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += [f"{b.march}: {b.stack.ollama_binary}; CPU features: {b.features}" for b in builds]
    return lines


# ---------------------------------------------------------------------- details


async def details(stack: OllamaStack, runs: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=600) as client:
        version = (await client.get("/api/version")).json()["version"]
        rows.append(("Ollama version", version))
        rows.append(("binary", f"{stack.ollama_binary} ({_mb(stack.ollama_binary)})"))
        models = [stack.chat, stack.embedding] + ([stack.instruct] if stack.instruct else [])
        for local in models:
            rows.append((f"model file: {local.name}", f"{local.size / 1e6:.2f} MB ({local.kind})"))
        for step, seconds in stack.timings.steps.items():
            rows.append((f"start-up: {step}", f"{seconds:.2f} s"))

        await client.request("DELETE", "/api/delete", json={"model": stack.chat_model})
        started = time.monotonic()
        response = await client.post(
            "/api/pull", json={"model": stack.chat_model, "insecure": True, "stream": False}
        )
        response.raise_for_status()
        rows.append(("pull tiny chat model from registry", f"{time.monotonic() - started:.2f} s"))

        for label, model in (("tiny chat", stack.chat_model), ("SmolLM2", stack.instruct_model)):
            await client.post("/api/generate", json={"model": model, "keep_alive": 0})
            await asyncio.sleep(0.5)
            loaded = await chat(client, model, 1, None)
            rows.append((f"{label} load (cold)", f"{loaded['load_duration'] / 1e9:.3f} s"))
            started = time.monotonic()
            first_token = 0.0
            async with client.stream(
                "POST",
                "/api/chat",
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": "Plan my week"}],
                    "options": {"num_predict": 32},
                },
            ) as stream:
                async for _ in stream.aiter_lines():
                    if not first_token:
                        first_token = time.monotonic() - started
            rows.append((f"{label} time to first streamed chunk", f"{first_token * 1000:.0f} ms"))
            await client.post("/api/generate", json={"model": model, "keep_alive": 0})

        await client.post(
            "/api/embed", json={"model": stack.embedding_model, "input": "", "keep_alive": 0}
        )
        await asyncio.sleep(0.5)
        embedded = (
            await client.post("/api/embed", json={"model": stack.embedding_model, "input": "hi"})
        ).json()
        rows.append(("embedding model load (cold)", f"{embedded['load_duration'] / 1e9:.3f} s"))
        latencies = []
        for _ in range(runs):
            started = time.monotonic()
            await client.post("/api/embed", json={"model": stack.embedding_model, "input": "hi"})
            latencies.append(time.monotonic() - started)
        rows.append(
            ("embed one short text", f"{statistics.median(latencies) * 1000:.0f} ms median")
        )
        started = time.monotonic()
        await client.post("/api/embed", json={"model": stack.embedding_model, "input": SENTENCES})
        elapsed = time.monotonic() - started
        rows.append(
            (
                f"embed a batch of {len(SENTENCES)} sentences",
                f"{len(SENTENCES) / elapsed:.0f} texts/s",
            )
        )
    return rows


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


# ---------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> None:
    marches = [m for m in args.builds.split(",") if m]
    threads = [int(n) for n in args.threads.split(",") if n]
    for march in marches:  # one at a time: a cold build uses both cores for many minutes
        await build_ollama(march)
    builds: list[Build] = []
    try:
        for march in marches:
            workdir = Path(tempfile.mkdtemp(prefix=f"coachops-ollama-bench-{march}-"))
            stack = await start_ollama_stack(
                workdir, blob_rate="0", keep_workdir=False, march=march
            )
            builds.append(Build(march, stack))
        models = {"SmolLM2-135M Q4_1": "instruct_model", "tiny chat (random)": "chat_model"}
        load = os.getloadavg()[0]
        await throughput(builds, models, threads, args.runs, args.tokens)
        for build in builds:
            build.read_features()
        rows = await details(builds[-1].stack, args.runs)
        rows.append(
            ("load average (1 min) before / after", f"{load:.1f} / {os.getloadavg()[0]:.1f}")
        )
    finally:
        for build in builds:
            build.stack.stop()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value ({builds[-1].march} build)")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()
    print("\n".join(throughput_table(builds, args.tokens, args.runs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", default="none,native", help="COACHOPS_OLLAMA_MARCH values")
    parser.add_argument("--threads", default="1,2", help="num_thread values")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
