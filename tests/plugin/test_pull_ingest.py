"""``kubectl coachops pull`` follows a real model pull (the loopback registry paces blob
downloads to 1 MiB/s, so a few MB show progress), and ``ingest`` uploads files through the
real runtime, which the real worker ingests; as docs/plugin.md shows them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

from coachops_devstack.process import ManagedProcess
from tests.operator_suite.conftest import Kube, Models, Operator
from tests.plugin.conftest import Plugin, Runtime, creator_ready, invoke, program_synced

DEFAULT_CHAT = "coachops/tiny-chat:latest"
DEFAULT_EMBEDDING = "coachops/minilm:latest"


async def test_pull_shows_the_progress_the_operator_reports_until_the_model_is_there(
    operator: Operator,
    kube: Kube,
    models: Models,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    plugin: Plugin,
) -> None:
    model = await models.push_unique(padding=2**20)  # ~3 MB: about 3 s at 1 MiB/s
    name = new_creator_name("pl")
    allowed = {"chat": [DEFAULT_CHAT, model], "embedding": [DEFAULT_EMBEDDING]}
    await creator_ready(kube, creators, name, models=allowed)
    await kube.create_program(name, "coach", model={"chat": model})

    ran = await plugin("pull", "coach", "--creator", name, "--timeout", "240", seconds=300)

    assert ran.code == 0, ran.err + ran.out
    percents = [int(p) for p in re.findall(r"^ *(\d+)% ", ran.out, re.MULTILINE)]
    assert percents[-1] == 100, ran.out
    assert all(a <= b for a, b in itertools.pairwise(percents)), percents
    assert any(0 < p < 100 for p in percents), ran.out  # the bar moved between the ends
    assert re.search(r"Pulling: chat model .+ of .+ \(\d+%\)", ran.out), ran.out
    assert f"{name}/coach: models on Ollama ({model} and {DEFAULT_EMBEDDING})" in ran.out
    # The operator's metrics counted the pull and dropped its progress series.
    assert operator.current is not None
    scraped = await operator.current.metrics()
    assert re.search(
        r'^coachops_operator_model_pulls_total\{result="succeeded"\} [1-9]', scraped, re.M
    )
    assert f'model="{models.registry}/{model}"' not in scraped
    assert 'coachops_operator_reconciles_waiting{kind="CoachingProgram"} 0.0' in scraped


async def test_pull_of_a_refused_model_says_why_and_fails(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    plugin: Plugin,
) -> None:
    name = new_creator_name("pl")
    await creator_ready(kube, creators, name, models={"chat": [DEFAULT_CHAT]})
    await kube.create_program(name, "coach", model={"chat": "coachops/not-allowed:latest"})

    ran = await plugin("pull", "coach", "--timeout", "60")  # the only program so named

    assert ran.code == 1
    assert "error: the models will not be pulled: ModelNotAllowed:" in ran.err, ran.err


async def test_ingest_uploads_with_progress_and_follows_until_ready(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    runtime: Runtime,
    worker: ManagedProcess,
    plugin: Plugin,
    tmp_path: Path,
) -> None:
    mine, other = new_creator_name("in"), new_creator_name("in")
    await creator_ready(kube, creators, mine)
    await creator_ready(kube, creators, other)
    await program_synced(kube, mine, "sleep")
    await program_synced(kube, other, "sleep")
    key, other_key = await runtime.api_key(mine), await runtime.api_key(other)
    guide = tmp_path / "guide.md"
    guide.write_text("# Sleep\n\n" + "Go to bed at the same time every night. " * 400)
    tips = tmp_path / "tips.txt"
    tips.write_text("Keep the bedroom cool and dark.")
    env = {"COACHOPS_RUNTIME_URL": runtime.url, "COACHOPS_TOKEN": key}

    ran = await plugin("ingest", "sleep", str(guide), str(tips), env=env)

    assert ran.code == 0, ran.err + ran.out
    assert "uploaded guide.md: pending" in ran.out
    assert "uploaded tips.txt: pending" in ran.out
    assert "guide.md: ready" in ran.out
    answer = await runtime.http.get(
        "/v1/programs/sleep/knowledge", headers={"Authorization": f"Bearer {key}"}
    )
    documents = {d["name"]: d for d in answer.json()["items"]}
    assert {documents[n]["state"] for n in ("guide.md", "tips.txt")} == {"ready"}
    assert documents["guide.md"]["chunk_count"] > 1
    assert documents["guide.md"]["size_bytes"] == guide.stat().st_size
    # The other tenant's program of the same name is untouched.
    answer = await runtime.http.get(
        "/v1/programs/sleep/knowledge", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert answer.json()["items"] == []


async def test_ingest_errors_are_the_runtimes_problems_and_exit_non_zero(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    runtime: Runtime,
    tmp_path: Path,
) -> None:
    name = new_creator_name("ie")
    await creator_ready(kube, creators, name)
    key = await runtime.api_key(name)
    notes = tmp_path / "notes.txt"
    notes.write_text("Drink water.")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")

    ran = await invoke("ingest", "nothing", str(notes), env={"COACHOPS_TOKEN": key})
    assert ran.code == 1
    assert "error: no runtime URL: pass --runtime-url or set COACHOPS_RUNTIME_URL" in ran.err

    ran = await invoke("ingest", "nothing", str(notes), "--runtime-url", runtime.url)
    assert ran.code == 1
    assert "error: no token: pass --token or set COACHOPS_TOKEN" in ran.err

    args = ("--runtime-url", runtime.url, "--token", key)
    ran = await invoke("ingest", "nothing", str(notes), *args)
    assert ran.code == 1
    assert "error: the runtime answered 404:" in ran.err, ran.err

    ran = await invoke(
        "ingest", "nothing", str(notes), "--runtime-url", runtime.url, "--token", "x"
    )
    assert ran.code == 1
    assert "error: the runtime answered 401:" in ran.err, ran.err

    await program_synced(kube, name, "sleep")
    ran = await invoke("ingest", "sleep", str(empty), *args)
    assert ran.code == 1
    assert "error: the runtime answered 422:" in ran.err, ran.err

    ran = await invoke("ingest", "sleep", str(notes), "--no-wait", *args)
    assert ran.code == 0, ran.err
    assert "pending" in ran.out

    ran = await invoke("ingest", "sleep", str(tmp_path / "missing.txt"), *args)
    assert ran.code == 2  # a usage error: typer names the argument
    assert "does not exist" in ran.err

    ran = await invoke(
        "ingest", "sleep", str(notes), "--runtime-url", "http://127.0.0.1:9", "--token", key
    )
    assert ran.code == 1
    assert "error: cannot reach the runtime at http://127.0.0.1:9" in ran.err
