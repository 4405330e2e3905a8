"""The plugin's pure parts: table cells, pull states, problem documents, the multipart
body (no cluster needed)."""

from __future__ import annotations

import io
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from coachops_kubectl import conditions, render
from coachops_kubectl.errors import PluginError
from coachops_kubectl.ingest import Body, media_type, problem
from coachops_kubectl.pull import PullState


def _text(renderable: Any) -> str:
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _obj(name: str, namespace: str = "", **status: Any) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "status": status}


def test_status_lists_programs_of_a_namespace_no_creator_owns_last() -> None:
    creator = _obj("acme")  # not reconciled yet: no conditions
    stray = _obj(
        "lost", "elsewhere", conditions=[{"type": "Ready", "status": "False", "reason": "Pending"}]
    )
    text = _text(render.status_table([creator], [stray]))
    lines = [line for line in text.splitlines() if "acme" in line or "lost" in line]
    assert "Unknown" in lines[0]
    assert "not reconciled yet" in lines[0]
    assert "(elsewhere)" in lines[1]
    assert "Pending" in lines[1]


def test_problem_is_the_ready_reason_and_message() -> None:
    ready = {"type": "Ready", "status": "False", "reason": "QuotaPending", "message": ""}
    assert conditions.problem([ready]) == "QuotaPending"
    assert conditions.problem([{**ready, "message": "waiting"}]) == "QuotaPending: waiting"
    assert conditions.problem([{**ready, "status": "True"}]) == ""
    assert conditions.summary([{"type": "A", "status": "Unknown"}, ready]) == "A ?"


def test_object_details_never_show_secret_data() -> None:
    deployment = {"kind": "Deployment", "spec": {"replicas": 2}, "status": {"readyReplicas": 1}}
    assert render.detail(deployment) == "1/2 ready"
    secret = {"kind": "Secret", "type": "kubernetes.io/tls", "data": {"tls.key": "c2VjcmV0"}}
    assert render.detail(secret) == "type kubernetes.io/tls"
    assert render.detail({"kind": "Service"}) == ""


def test_pull_states() -> None:
    assert PullState.of({"status": {}}).reason == "NotReported"
    refused = PullState.of(
        {
            "status": {
                "modelPullPercent": 0,
                "conditions": [
                    {
                        "type": "ModelReady",
                        "status": "False",
                        "reason": "NoModelServer",
                        "message": "no Ollama",
                    }
                ],
            }
        }
    )
    with pytest.raises(PluginError, match="will not be pulled: NoModelServer: no Ollama"):
        refused.check()
    pulling = PullState(42, "False", "Pulling", "1 MB of 2 MB")
    pulling.check()  # waiting can help
    assert not pulling.done
    assert pulling.line() == " 42% Pulling: 1 MB of 2 MB"


def test_problem_documents_and_bodies() -> None:
    assert problem({"title": "Not Found", "detail": "no program x"}) == "Not Found: no program x"
    assert problem({"title": "Gone", "detail": "Gone"}) == "Gone"
    assert problem(["not", "a", "document"]) == "no problem document"
    assert media_type(Path("a.md")) == "text/markdown"
    assert media_type(Path("a.weird")) == "application/octet-stream"


async def test_body_streams_the_file_and_reports_each_chunk() -> None:
    content = bytes(range(256)) * 600  # 150 KiB: three chunks
    body = Body.of('odd "name".txt', "text/plain", content)
    sent: list[int] = []
    chunks = [chunk async for chunk in body.chunks(sent.append)]
    joined = b"".join(chunks)
    assert len(joined) == body.length
    assert sum(sent) == len(content)
    assert len(sent) == 3
    assert b'filename="odd \\"name\\".txt"' in joined
    boundary = body.content_type.split("boundary=")[1]
    assert joined.endswith(f"\r\n--{boundary}--\r\n".encode())


def test_python_m_runs_the_plugin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["kubectl-coachops", "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("coachops_kubectl", run_name="__main__")
    assert exit_.value.code == 0
    assert "status" in capsys.readouterr().out
