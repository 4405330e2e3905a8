"""A real Ollama server, a loopback model registry and the locally made models.

``start_ollama_stack(workdir)`` brings up, on loopback and with no network:

* the OCI registry from tools/registry (go-containerregistry) — blobs and manifests on disk
  under ``workdir/registry``, blob downloads paced to ``blob_rate`` so pull progress shows;
* Ollama built from its Go module (tools/ollama), CPU only, ggml compiled for this CPU's
  instruction sets (``march``, default ``$COACHOPS_OLLAMA_MARCH`` or ``native``), with
  ``OLLAMA_MODELS`` and ``HOME`` inside ``workdir`` and cloud features off;
* the models from scripts/make_models.py, loaded through Ollama's own API
  (``/api/blobs`` + ``/api/create``): the embedding model stays in Ollama (and is loaded
  once, which measures its load time); the tiny random chat model is created under its
  registry name, pushed with ``/api/push`` (``insecure``) and deleted again, so a later
  ``/api/pull`` of ``OllamaStack.chat_model`` is a real download from the registry;
  SmolLM2 (``OllamaStack.instruct_model``) is created with its ChatML template, default
  system prompt and options, pushed, and kept, since a paced pull of 98 MB would take
  minutes (``instruct=False`` leaves it out).

The binaries come from scripts/build-ollama.sh and scripts/build-registry.sh, which the
starter runs first (they return at once when the cached build matches the pinned modules).

Fault injection: ``stop_ollama()`` / ``kill_ollama()`` make Ollama unavailable (clients get
connection errors), ``await start_ollama()`` brings it back on the same port with the same
models; ``missing_model`` names a model the registry does not have, so pulling it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from coachops_devstack.paths import REPO_ROOT, bin_dir, go_module_version
from coachops_devstack.ports import free_port
from coachops_devstack.process import ComponentError, ManagedProcess

HOST = "127.0.0.1"
REGISTRY_NAMESPACE = "coachops"
CHAT_REPOSITORY = "tiny-chat"
CHAT_TAG = "latest"
INSTRUCT_REPOSITORY = "smollm2"
INSTRUCT_TAG = "135m"
# Baked into the chat model: a reply of the random-weight model stays short, and one thread
# is both faster and steadier than two for a 1M-parameter model on a busy 2-core machine
# (measured: ~650 tok/s steady with 1 thread, 6-630 tok/s with 2 under load).
CHAT_PARAMETERS: dict[str, Any] = {"num_predict": 64, "num_ctx": 2048, "num_thread": 1}
# The same holds for MiniLM: three short sentences took ~1.1 s with one thread and ~7 s with
# two while the machine was loaded (ggml's worker threads spin waiting for each other).
EMBEDDING_PARAMETERS: dict[str, Any] = {"num_thread": 1}
# SmolLM2 too: on this shared 2-core machine one thread ran it at 145 tokens/s median
# (131-146) against 126 (11-140) with two (bench/ollama_bench.py, native build).
INSTRUCT_PARAMETERS: dict[str, Any] = {"num_thread": 1}
# ggml's start-up line, e.g. "msg=system CPU.0.SSE3=1 CPU.0.AVX2=1 ... compiler=cgo(gcc)".
_CPU_FEATURE = re.compile(r"\bCPU\.0\.([A-Z0-9_]+)=(\S+)")


@dataclass(frozen=True)
class LocalModel:
    """A model file made by scripts/make_models.py."""

    name: str
    path: Path
    sha256: str
    size: int
    kind: str
    source: str
    details: dict[str, Any]

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalModel:
        return cls(
            name=str(data["name"]),
            path=Path(data["path"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            kind=str(data["kind"]),
            source=str(data["source"]),
            details=dict(data["details"]),
        )


@dataclass
class OllamaTimings:
    """Seconds each start-up step took (model load: Ollama's own ``load_duration``)."""

    steps: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        rows = [f"  {name:<30}{seconds:7.2f} s" for name, seconds in self.steps.items()]
        return "\n".join(["ollama stack start-up:", *rows])


@dataclass
class OllamaStack:
    """A running Ollama, its registry and its models. Stop it with ``stop()``."""

    workdir: Path
    ollama_binary: Path
    registry_binary: Path
    port: int
    registry_port: int
    chat: LocalModel
    embedding: LocalModel
    blob_rate: str
    instruct: LocalModel | None = None
    timings: OllamaTimings = field(default_factory=OllamaTimings)
    keep_workdir: bool = False
    ollama_process: ManagedProcess | None = None
    registry_process: ManagedProcess | None = None
    _restarts: int = 0

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        """Ollama's base URL, e.g. ``http://127.0.0.1:41234`` (what OLLAMA_HOST would hold)."""
        return f"http://{HOST}:{self.port}"

    @property
    def registry_address(self) -> str:
        """``127.0.0.1:PORT``: the registry host as it appears in model names."""
        return f"{HOST}:{self.registry_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.registry_address}"

    @property
    def chat_model(self) -> str:
        """The chat model's name in the registry; pull it with ``insecure: true``."""
        return f"{self.registry_address}/{REGISTRY_NAMESPACE}/{CHAT_REPOSITORY}:{CHAT_TAG}"

    @property
    def instruct_model(self) -> str:
        """SmolLM2's name in the registry; Ollama already holds it under this name."""
        if self.instruct is None:
            raise ComponentError("the stack was started with instruct=False")
        return f"{self.registry_address}/{REGISTRY_NAMESPACE}/{INSTRUCT_REPOSITORY}:{INSTRUCT_TAG}"

    @property
    def log_path(self) -> Path | None:
        """The running (or last) Ollama server's log file."""
        return None if self.ollama_process is None else self.ollama_process.log_path

    def cpu_features(self) -> dict[str, str]:
        """What ggml's CPU backend reported in the log ("CPU.0.AVX2=1 ..."): name -> value.

        The line is written when a runner loads a model; empty until one has.
        """
        features: dict[str, str] = {}
        logs = sorted((self.workdir / "logs").glob("ollama*.log"), key=lambda p: p.stat().st_mtime)
        for log in logs:
            for line in log.read_text(errors="replace").splitlines():
                if "msg=system" in line and "CPU.0." in line:
                    features = dict(_CPU_FEATURE.findall(line))
        return features

    @property
    def embedding_model(self) -> str:
        """The embedding model's name; Ollama already holds it."""
        return self.embedding.name

    @property
    def embedding_dimension(self) -> int:
        return int(self.embedding.details["embedding_length"])

    @property
    def embedding_is_minilm(self) -> bool:
        """True for the real all-MiniLM-L6-v2 weights, False for the random fallback."""
        return bool(self.embedding.details.get("meaningful", False))

    @property
    def missing_model(self) -> str:
        """A well-formed registry model name that the registry does not have."""
        return f"{self.registry_address}/{REGISTRY_NAMESPACE}/no-such-model:{CHAT_TAG}"

    def env(self) -> dict[str, str]:
        """Environment for clients: ``OLLAMA_HOST`` pointing here."""
        return {"OLLAMA_HOST": self.base_url}

    # ------------------------------------------------------------------ fault switch

    def running(self) -> bool:
        return self.ollama_process is not None and self.ollama_process.running()

    def stop_ollama(self) -> None:
        """Stop the Ollama server (SIGTERM, then SIGKILL); the registry keeps running."""
        if self.ollama_process is not None:
            self.ollama_process.stop()

    def kill_ollama(self) -> None:
        """SIGKILL Ollama and its runners at once, as a crash would."""
        if self.ollama_process is not None:
            self.ollama_process.kill()
            self.ollama_process.stop()

    async def start_ollama(self, timeout: float = 60.0) -> float:
        """(Re)start Ollama on the same port with the same models; returns seconds to ready."""
        if self.running():
            return 0.0
        self._restarts += 1
        self.ollama_process = _ollama_process(
            self.ollama_binary, self.workdir, self.port, self._restarts
        )
        self.ollama_process.start()

        async def ready() -> bool:
            return await _ollama_ready(self.base_url)

        return await self.ollama_process.wait_ready(ready, timeout=timeout)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Stop Ollama and the registry, and remove the work directory unless kept."""
        self.stop_ollama()
        if self.registry_process is not None:
            self.registry_process.stop()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------- building


async def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Run a build step, relaying its output to stderr as it comes; returns its last line."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,
        env=None if env is None else {**os.environ, **env},
    )
    assert proc.stdout is not None
    last = ""
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if line:
            if last:
                print(last, file=sys.stderr, flush=True)
            last = line
    if await proc.wait() != 0 or not last:
        if last:
            print(last, file=sys.stderr, flush=True)
        raise ComponentError(f"{what} failed ({' '.join(argv)}, exit {proc.returncode})")
    return last


def ollama_march(march: str | None = None) -> str:
    """The ``-march`` Ollama is built for: ``march``, else $COACHOPS_OLLAMA_MARCH, else native."""
    return march or os.environ.get("COACHOPS_OLLAMA_MARCH") or "native"


def ollama_bin(march: str | None = None) -> Path:
    """The built Ollama binary (scripts/build-ollama.sh names its directory the same way)."""
    version = go_module_version("ollama", "github.com/ollama/ollama")
    march = ollama_march(march)
    suffix = "" if march == "none" else f"-{march}"
    return bin_dir() / f"ollama-{version}{suffix}" / "ollama"


def registry_bin() -> Path:
    """The built registry binary (scripts/build-registry.sh)."""
    version = go_module_version("registry", "github.com/google/go-containerregistry")
    return bin_dir() / f"registry-{version}" / "registry"


async def build_ollama(march: str | None = None) -> Path:
    """Run scripts/build-ollama.sh for ``march`` (instant when its cached build is current)."""
    env = {"COACHOPS_OLLAMA_MARCH": ollama_march(march)}
    return Path(await _run(["bash", "scripts/build-ollama.sh"], "building Ollama", env))


async def build_binaries(march: str | None = None) -> tuple[Path, Path]:
    """Run both build scripts (instant when their cached builds are current)."""
    ollama, registry = await asyncio.gather(
        build_ollama(march),
        _run(["bash", "scripts/build-registry.sh"], "building the registry"),
    )
    return ollama, Path(registry)


async def make_models() -> dict[str, LocalModel]:
    """Run scripts/make_models.py (instant when cached); keys chat, instruct, embedding."""
    out = await _run([sys.executable, "scripts/make_models.py", "--json"], "making the models")
    return {key: LocalModel.from_json(value) for key, value in json.loads(out).items()}


# ---------------------------------------------------------------------- Ollama API


def _ollama_env(workdir: Path, port: int) -> dict[str, str]:
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "OLLAMA_HOST": f"{HOST}:{port}",
        "OLLAMA_MODELS": str(workdir / "models"),
        "HOME": str(home),  # Ollama keeps its key pair in ~/.ollama
        "OLLAMA_NO_CLOUD": "1",
        "OLLAMA_NOHISTORY": "1",
        "OLLAMA_KEEP_ALIVE": "30m",
        "OLLAMA_LOAD_TIMEOUT": "2m",
        "OLLAMA_ORIGINS": f"http://{HOST}:*",
        "HTTP_PROXY": "",
        "HTTPS_PROXY": "",
        "NO_PROXY": "*",
    }


def _ollama_process(binary: Path, workdir: Path, port: int, generation: int) -> ManagedProcess:
    log = "ollama.log" if generation == 0 else f"ollama-restart-{generation}.log"
    return ManagedProcess(
        "ollama",
        [str(binary), "serve"],
        workdir / "logs" / log,
        env=_ollama_env(workdir, port),
        cwd=workdir,
    )


async def _ollama_ready(base_url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as client:
        response = await client.get(f"{base_url}/api/version")
        return response.status_code == 200


async def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        await response.aread()
        raise ComponentError(f"{what}: HTTP {response.status_code} {response.text}")


async def upload_blob(client: httpx.AsyncClient, model: LocalModel) -> None:
    """``/api/blobs/<digest>``: HEAD to see whether Ollama has it, POST the file if not."""
    url = f"/api/blobs/{model.digest}"
    if (await client.head(url)).status_code == 200:
        return
    data = await asyncio.to_thread(model.path.read_bytes)
    response = await client.post(url, content=data)
    await _raise_for(response, f"uploading {model.path.name}")


async def create_model(
    client: httpx.AsyncClient, name: str, model: LocalModel, **extra: Any
) -> None:
    """``/api/create`` from an uploaded GGUF blob."""
    body = {"model": name, "files": {model.path.name: model.digest}, "stream": False, **extra}
    response = await client.post("/api/create", json=body)
    await _raise_for(response, f"creating {name}")


async def push_model(client: httpx.AsyncClient, name: str) -> None:
    """``/api/push`` to the loopback registry (plain HTTP, hence ``insecure``)."""
    response = await client.post(
        "/api/push", json={"model": name, "insecure": True, "stream": False}
    )
    await _raise_for(response, f"pushing {name}")
    status = response.json().get("status")
    if status != "success":
        raise ComponentError(f"pushing {name}: {response.text}")


async def delete_model(client: httpx.AsyncClient, name: str) -> None:
    response = await client.request("DELETE", "/api/delete", json={"model": name})
    if response.status_code != 404:
        await _raise_for(response, f"deleting {name}")


async def load_model(client: httpx.AsyncClient, name: str, kind: str) -> float:
    """Load a model into a runner; returns Ollama's ``load_duration`` in seconds."""
    if kind == "embedding":
        response = await client.post("/api/embed", json={"model": name, "input": "warm up"})
    else:
        response = await client.post(
            "/api/generate",
            json={"model": name, "prompt": "hi", "stream": False, "options": {"num_predict": 1}},
        )
    await _raise_for(response, f"loading {name}")
    return float(response.json().get("load_duration", 0)) / 1e9


# ---------------------------------------------------------------------- the stack


async def start_ollama_stack(
    workdir: Path,
    *,
    build: bool = True,
    blob_rate: str = "1MiB",
    pull_chat: bool = False,
    keep_workdir: bool = True,
    march: str | None = None,
    instruct: bool = True,
) -> OllamaStack:
    """Start the registry and Ollama under ``workdir`` and load the models.

    ``blob_rate`` paces registry blob downloads (the chat model is about 2 MB, so the
    default makes a pull last about two seconds); ``"0"`` removes the limit.
    ``pull_chat`` also pulls the chat model back, for callers that want it ready.
    ``keep_workdir=False`` makes ``stop()`` remove ``workdir``.
    ``march`` picks the Ollama build (see scripts/build-ollama.sh; ``"none"`` is the build
    without SIMD); ``instruct=False`` skips SmolLM2 (a ~3 s upload, create and push).
    On any failure, whatever started is stopped and the error re-raised.
    """
    workdir = workdir.resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    timings = OllamaTimings()
    started = time.monotonic()

    async def timed(name: str, coro: Any) -> Any:
        t0 = time.monotonic()
        result = await coro
        timings.steps[name] = time.monotonic() - t0
        return result

    if build:
        ollama_binary, registry_binary = await timed(
            "build (or reuse) binaries", build_binaries(march)
        )
    else:
        ollama_binary, registry_binary = ollama_bin(march), registry_bin()
        for path in (ollama_binary, registry_binary):
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run scripts/build-*.sh first")
    port, registry_port = free_port(), free_port()
    registry_process = ManagedProcess(
        "registry",
        [
            str(registry_binary),
            "-addr",
            f"{HOST}:{registry_port}",
            "-dir",
            str(workdir / "registry"),
            "-blob-rate",
            blob_rate,
        ],
        workdir / "logs" / "registry.log",
    )
    ollama_process = _ollama_process(ollama_binary, workdir, port, 0)

    async def registry_ready() -> bool:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"http://{HOST}:{registry_port}/v2/")
            return response.status_code == 200

    async def ollama_ready() -> bool:
        return await _ollama_ready(f"http://{HOST}:{port}")

    try:
        registry_process.start()
        ollama_process.start()
        models, _, _ = await asyncio.gather(
            timed("make (or reuse) models", make_models()),
            timed("registry ready", registry_process.wait_ready(registry_ready, 30)),
            timed("ollama ready", ollama_process.wait_ready(ollama_ready, 60)),
        )
    except BaseException:
        ollama_process.stop()
        registry_process.stop()
        raise

    stack = OllamaStack(
        workdir=workdir,
        ollama_binary=ollama_binary,
        registry_binary=registry_binary,
        port=port,
        registry_port=registry_port,
        chat=models["chat"],
        embedding=models["embedding"],
        instruct=models["instruct"] if instruct else None,
        blob_rate=blob_rate,
        timings=timings,
        keep_workdir=keep_workdir,
        ollama_process=ollama_process,
        registry_process=registry_process,
    )
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=300) as client:
            t0 = time.monotonic()
            await upload_blob(client, stack.embedding)
            await create_model(
                client, stack.embedding_model, stack.embedding, parameters=EMBEDDING_PARAMETERS
            )
            timings.steps["embedding upload + create"] = time.monotonic() - t0
            timings.steps["embedding load (load_duration)"] = await load_model(
                client, stack.embedding_model, "embedding"
            )

            t0 = time.monotonic()
            await upload_blob(client, stack.chat)
            await create_model(
                client,
                stack.chat_model,
                stack.chat,
                template=stack.chat.details["template"],
                parameters={**CHAT_PARAMETERS, "stop": stack.chat.details["stop"]},
            )
            timings.steps["chat upload + create"] = time.monotonic() - t0
            t0 = time.monotonic()
            await push_model(client, stack.chat_model)
            timings.steps["chat push to registry"] = time.monotonic() - t0
            await delete_model(client, stack.chat_model)
            if stack.instruct is not None:
                t0 = time.monotonic()
                await upload_blob(client, stack.instruct)
                await create_model(
                    client,
                    stack.instruct_model,
                    stack.instruct,
                    template=stack.instruct.details["template"],
                    system=stack.instruct.details["system"],
                    parameters={
                        **stack.instruct.details["options"],
                        **INSTRUCT_PARAMETERS,
                        "stop": stack.instruct.details["stop"],
                    },
                )
                await push_model(client, stack.instruct_model)
                timings.steps["SmolLM2 upload + create + push"] = time.monotonic() - t0
            if pull_chat:
                t0 = time.monotonic()
                response = await client.post(
                    "/api/pull",
                    json={"model": stack.chat_model, "insecure": True, "stream": False},
                )
                await _raise_for(response, f"pulling {stack.chat_model}")
                timings.steps["chat pull from registry"] = time.monotonic() - t0
    except BaseException:
        stack.stop()
        raise
    timings.steps["total"] = time.monotonic() - started
    return stack


def main() -> None:
    """``python -m coachops_devstack.ollama``: start the stack, print it, wait for Ctrl-C."""
    import signal
    import tempfile

    async def run() -> None:
        workdir = Path(tempfile.mkdtemp(prefix="coachops-ollama-"))
        stack = await start_ollama_stack(workdir, keep_workdir=False)
        print(stack.timings.table())
        print(f"OLLAMA_HOST={stack.base_url}")
        print(f"registry:        {stack.registry_address}")
        print(f"embedding model: {stack.embedding_model} ({stack.embedding_dimension} dims)")
        print(f"chat model:      {stack.chat_model} (pull with insecure=true)")
        print(f"instruct model:  {stack.instruct_model} (SmolLM2, already in Ollama)")
        print(f"logs:            {workdir / 'logs'}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            stack.stop()

    asyncio.run(run())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
