"""The ``kubectl coachops`` commands (typer) and the one place errors are rendered.

Each command runs one asyncio loop. A ``PluginError`` from anywhere becomes one line on
stderr and the exit code it carries; usage errors are typer's (exit code 2).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from coachops_crds import constants as c
from coachops_kubectl import cluster, pull, render
from coachops_kubectl.errors import PluginError
from coachops_kubectl.ingest import Runtime, follow

T = TypeVar("T")

app = typer.Typer(
    name="kubectl coachops",
    help="coachops tenants and programs as a platform team sees them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except PluginError as error:
        err.print(f"error: {error.message}", markup=False)
        raise typer.Exit(error.code) from None


@app.callback()
def options(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."),
    ] = None,
) -> None:
    """Read coachops objects with the kubeconfig's current context."""
    if kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(kubeconfig)


@app.command()
def status() -> None:
    """Every Creator and CoachingProgram with its conditions, in one table."""

    async def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with cluster.session() as api:
            return await cluster.creators(api), await cluster.programs(api)

    creators, programs = _run(read())
    out.print(render.status_table(creators, programs))
    if not creators and not programs:
        out.print("No Creators yet: create one with kubectl apply (docs/operator.md).")


@app.command()
def describe(creator: Annotated[str, typer.Argument(help="The Creator's name.")]) -> None:
    """Everything a tenant owns: its stores' health, programs and Kubernetes objects."""

    async def read() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        async with cluster.session() as api:
            found = await cluster.creator(api, creator)
            namespace = c.creator_namespace(creator)
            return (
                found,
                await cluster.programs(api, namespace),
                await cluster.owned(api, namespace),
            )

    found, programs, owned = _run(read())
    out.print(render.describe(found, programs, owned))


@app.command("pull")
def pull_command(
    program: Annotated[str, typer.Argument(help="The CoachingProgram's name.")],
    creator: Annotated[
        str | None,
        typer.Option("--creator", "-c", help="Its Creator (needed when the name is not unique)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 3600,
) -> None:
    """Watch the program's model pull until its models are on Ollama."""
    _run(_pull(program, creator, limit=timeout))


async def _pull(name: str, creator: str | None, *, limit: float) -> None:
    async with cluster.session() as api:
        program = await cluster.find_program(api, name, creator)
        namespace = program["metadata"]["namespace"]
        models = (program.get("spec") or {}).get("model") or {}
        title = f"{cluster.creator_of(namespace)}/{name}"
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
        )
        last: pull.PullState | None = None
        with Progress(*columns, console=out) as progress:
            task = progress.add_task(title, total=100, detail="")
            try:
                async with asyncio.timeout(limit):
                    async for state in pull.states(api, namespace, name):
                        progress.update(task, completed=state.percent, detail=state.reason)
                        if not out.is_terminal and state != last:
                            out.print(state.line(), markup=False)  # a log when piped
                        last = state
                        state.check()
                        if state.done:
                            break
            except TimeoutError:
                where = last.line() if last else "no status"
                raise PluginError(f"not pulled after {limit:.0f} s: {where}") from None
        chat, embedding = models.get("chat", ""), models.get("embedding", "")
        out.print(f"{title}: models on Ollama ({chat} and {embedding})", markup=False)


@app.command()
def ingest(
    program: Annotated[str, typer.Argument(help="The CoachingProgram's name.")],
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Files to upload."),
    ],
    runtime_url: Annotated[
        str, typer.Option(envvar="COACHOPS_RUNTIME_URL", help="The runtime's base URL.")
    ] = "",
    token: Annotated[
        str,
        typer.Option(
            envvar="COACHOPS_TOKEN",
            help="The creator's API key (programs:read and programs:write) or access token.",
            show_default=False,
        ),
    ] = "",
    wait: Annotated[
        bool, typer.Option(help="Follow ingestion until every document is ready or failed.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Stop following after this many seconds.")] = 600,
) -> None:
    """Upload knowledge documents to a program through the runtime, with progress."""
    results = _run(_ingest(program, files, runtime_url, token, wait, limit=timeout))
    table = Table(title="Knowledge", title_justify="left")
    for column in ("FILE", "DOCUMENT", "STATE", "CHUNKS", "ERROR"):
        table.add_column(column, overflow="fold")
    for path, document in results:
        table.add_row(
            path.name,
            str(document.get("document_id", "")),
            str(document.get("state", "")),
            str(document.get("chunk_count", "")),
            str(document.get("error") or ""),
        )
    out.print(table)
    unfinished = [path.name for path, doc in results if doc.get("state") != "ready"]
    if wait and unfinished:
        err.print(f"error: not ingested: {', '.join(unfinished)}", markup=False)
        raise typer.Exit(1)


async def _ingest(
    program: str, files: list[Path], url: str, token: str, wait: bool, *, limit: float
) -> list[tuple[Path, dict[str, Any]]]:
    runtime = Runtime(url, token, program)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),  # an upload's size, a document's state
    )
    try:
        with Progress(*columns, console=out) as progress:
            uploaded: list[tuple[Path, dict[str, Any]]] = []
            for path in files:
                content = await asyncio.to_thread(path.read_bytes)
                task = progress.add_task(
                    f"upload {path.name}", total=len(content), detail=f"{len(content)} bytes"
                )

                def advance(sent: int, task: Any = task) -> None:
                    progress.advance(task, sent)

                document = await runtime.upload(path, content, advance)
                if not out.is_terminal:
                    out.print(f"uploaded {path.name}: {document.get('state')}", markup=False)
                uploaded.append((path, document))
            if not wait:
                return uploaded
            deadline = time.monotonic() + limit
            return list(
                await asyncio.gather(
                    *(_follow(runtime, progress, path, doc, deadline) for path, doc in uploaded)
                )
            )
    finally:
        await runtime.close()


async def _follow(
    runtime: Runtime, progress: Progress, path: Path, document: dict[str, Any], deadline: float
) -> tuple[Path, dict[str, Any]]:
    task = progress.add_task(f"ingest {path.name}", total=100, detail="pending")
    seen: list[str] = []

    def report(current: dict[str, Any]) -> None:
        state = str(current.get("state"))
        share = 1.0 if state == "ready" else float(current.get("progress") or 0)
        progress.update(task, completed=round(share * 100), detail=state)
        if not out.is_terminal and (not seen or seen[-1] != state):
            out.print(f"{path.name}: {state}", markup=False)
        seen.append(state)

    final = await follow(runtime, str(document["document_id"]), report, deadline)
    return path, final


def main() -> None:
    app()
