"""Measure the local Ollama stack: model sizes, load times, pull, chat and embedding speed.

    .venv/bin/python bench/ollama_bench.py [--runs 5] [--tokens 128]

Starts its own stack (coachops_devstack.ollama) with an unthrottled registry, so the pull
figure is the real loopback speed, and prints one table. Numbers come from Ollama's own
timings (load_duration, eval_count / eval_duration) where it reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from coachops_devstack.ollama import OllamaStack, start_ollama_stack

THREADS: dict[str, int] = {}  # --threads N sets num_thread for the chat runs
SENTENCES = [
    "I walked every morning this week and I feel great.",
    "How do I keep going when motivation drops?",
    "My goal is to sleep eight hours a night.",
    "The quarterly report is due on Friday.",
] * 4


async def unload(client: httpx.AsyncClient, model: str, embedding: bool) -> None:
    if embedding:
        await client.post("/api/embed", json={"model": model, "input": "", "keep_alive": 0})
    else:
        await client.post("/api/generate", json={"model": model, "keep_alive": 0})
    await asyncio.sleep(0.5)


async def measure(stack: OllamaStack, runs: int, tokens: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=600) as client:
        version = (await client.get("/api/version")).json()["version"]
        rows.append(("Ollama version", version))
        rows.append(("binary", f"{stack.ollama_binary} ({_mb(stack.ollama_binary)})"))
        for model in (stack.chat, stack.embedding):
            rows.append((f"model file: {model.name}", f"{model.size / 1e6:.2f} MB ({model.kind})"))
        for step, seconds in stack.timings.steps.items():
            rows.append((f"start-up: {step}", f"{seconds:.2f} s"))

        started = time.monotonic()
        response = await client.post(
            "/api/pull", json={"model": stack.chat_model, "insecure": True, "stream": False}
        )
        response.raise_for_status()
        rows.append(("pull chat model from registry", f"{time.monotonic() - started:.2f} s"))

        await unload(client, stack.chat_model, embedding=False)
        chat = await _chat(client, stack.chat_model, 1)
        rows.append(("chat model load (cold)", f"{chat['load_duration'] / 1e9:.3f} s"))
        await unload(client, stack.embedding_model, embedding=True)
        embedded = (
            await client.post("/api/embed", json={"model": stack.embedding_model, "input": "hi"})
        ).json()
        rows.append(("embedding model load (cold)", f"{embedded['load_duration'] / 1e9:.3f} s"))

        generate: list[float] = []
        prompt: list[float] = []
        for run in range(runs):
            result = await _chat(client, stack.chat_model, tokens, seed=run)
            generate.append(result["eval_count"] / (result["eval_duration"] / 1e9))
            prompt.append(result["prompt_eval_count"] / (result["prompt_eval_duration"] / 1e9))
        rows.append(
            (
                f"chat generation, {tokens} tokens x {runs}",
                f"{statistics.median(generate):.0f} tok/s median"
                f" (min {min(generate):.0f}, max {max(generate):.0f})",
            )
        )
        rows.append(("chat prompt evaluation", f"{statistics.median(prompt):.0f} tok/s median"))

        started = time.monotonic()
        first_token = 0.0
        async with client.stream(
            "POST",
            "/api/chat",
            json={
                "model": stack.chat_model,
                "messages": [{"role": "user", "content": "Plan my week"}],
                "options": {"num_predict": 32},
            },
        ) as stream:
            async for _ in stream.aiter_lines():
                if not first_token:
                    first_token = time.monotonic() - started
        rows.append(("chat time to first streamed chunk", f"{first_token * 1000:.0f} ms"))

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


async def _chat(
    client: httpx.AsyncClient, model: str, tokens: int, seed: int = 0
) -> dict[str, Any]:
    response = await client.post(
        "/api/chat",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "Give me a plan for a healthier week."}],
            "stream": False,
            "options": {"num_predict": tokens, "seed": seed, **THREADS},
        },
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="num_thread for chat (0: default)")
    args = parser.parse_args()
    if args.threads:
        THREADS["num_thread"] = args.threads
    workdir = Path(tempfile.mkdtemp(prefix="coachops-ollama-bench-"))
    stack = await start_ollama_stack(workdir, blob_rate="0", keep_workdir=False)
    try:
        rows = await measure(stack, args.runs, args.tokens)
    finally:
        stack.stop()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main())
