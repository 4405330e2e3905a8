"""`make up`'s stack comes up, reconciles the sample tenant, and lets a newcomer in: sign-up,
the verification e-mail in Mailpit, verify, log in, read the creator (the README's path)."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.ports import free_port
from tests.observability.exported import GRAFANA_VARIABLES
from tests.observability.test_promql import alert_expressions, dashboard_expressions

SAMPLES = REPO_ROOT / "manifests" / "samples"
PASSWORD = "correct horse battery staple"


def cell(listing: str, name: str, column: str) -> str:
    """The value under ``column`` in the row whose NAME is ``name``, in kubectl's table
    output (cells are read by the header's positions: empty cells do not shift them)."""
    header = ""
    for line in listing.splitlines():
        if line.startswith(("NAME ", "NAMESPACE ")):
            header = line
            continue
        names = [m for m in re.finditer(r"\S+", header)]
        starts = {m.group(): m.start() for m in names}
        if "NAME" not in starts or column not in starts:
            continue
        name_end = next((m.start() for m in names if m.start() > starts["NAME"]), len(line))
        if line[starts["NAME"] : name_end].strip() != name:
            continue
        end = next((m.start() for m in names if m.start() > starts[column]), len(line))
        return line[starts[column] : end].strip()
    raise AssertionError(f"no row {name!r} with a {column} column in:\n{listing}")


def test_cell_reads_by_position() -> None:
    listing = (
        "NAMESPACE   NAME                 READY   PLAN\n"
        "            creator.x/a          False   starter\n"
        "            creator.x/b          True    True\n"
    )
    assert cell(listing, "creator.x/a", "READY") == "False"
    assert cell(listing, "creator.x/b", "READY") == "True"
    with pytest.raises(AssertionError):
        cell(listing, "creator.x/c", "READY")


PROCESS_LINE = re.compile(r"^ *(operator|runtime|worker) \| ")


def stack_output(log: Path) -> str:
    """What `make up` printed itself, without the operator's, runtime's and worker's logs."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not PROCESS_LINE.match(line))


def wait_for(log: Path, pattern: str, process: subprocess.Popen[bytes], within: float) -> str:
    deadline = time.monotonic() + within
    text = ""
    while time.monotonic() < deadline:
        text = stack_output(log)
        if re.search(pattern, text):
            return text
        assert process.poll() is None, f"make up exited early:\n{text[-6000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} after {within:.0f} s:\n{text[-6000:]}")


@pytest.mark.slow
def test_local_stack_comes_up_and_a_newcomer_gets_in(tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "up.log"
    with output.open("wb") as sink:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coachops_devstack",
                "up",
                "--port",
                str(port),
                "--state-dir",
                str(tmp_path / "stack"),
            ],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        text = wait_for(
            output,
            r"coachops local stack is up[\s\S]*"
            r"(coachingprogram\.coachops\.dev/morning-habits|the sample tenant is not Ready)",
            up,
            600,
        )
        assert "the sample tenant is not Ready yet" not in text
        # What `make up` lists once the sample is Ready: the CRDs, then the programs and the
        # Creators.
        listing = text.split("coachops local stack is up", 1)[1]
        assert "creators.coachops.dev" in listing
        assert "coachingprograms.coachops.dev" in listing
        assert cell(listing, "creator.coachops.dev/sample-coach", "READY") == "True"
        assert cell(listing, "coachingprogram.coachops.dev/morning-habits", "READY") == "True"

        dsn_file = re.search(r"superuser DSN in (\S+)\)", text)
        assert dsn_file is not None
        path = Path(dsn_file.group(1))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text().startswith("postgresql://postgres:")

        mailpit = re.search(r"Mailpit:\s+(http://127\.0\.0\.1:\d+)/view/latest\.html", text)
        assert mailpit is not None, text
        newcomer_gets_in(f"http://127.0.0.1:{port}", mailpit.group(1))
        prometheus = re.search(r"Metrics:\s+(http://127\.0\.0\.1:\d+)/api/v1/targets", text)
        assert prometheus is not None, text
        prometheus_sees_the_stack(prometheus.group(1))
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert up.returncode == 0, output.read_text()[-4000:]
    assert "worker | " in output.read_text()


def newcomer_gets_in(api: str, mailpit: str) -> None:
    """The README's walk-through, step by step."""
    sample = yaml.safe_load((SAMPLES / "creator.yaml").read_text())
    name, email = sample["metadata"]["name"], sample["spec"]["contact"]["email"]
    credentials = {"email": email, "password": PASSWORD}
    with (
        httpx.Client(base_url=api, timeout=30) as http,
        httpx.Client(base_url=mailpit, timeout=10) as mail,
    ):
        response = http.post("/v1/auth/signup", json={"creator": name, **credentials})
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 60
        query = {"query": f'to:"{email}"'}
        while not (messages := mail.get("/api/v1/search", params=query).json()["messages"]):
            assert time.monotonic() < deadline, "no verification e-mail in Mailpit"
            time.sleep(0.5)
        (summary,) = messages
        text = mail.get(f"/api/v1/message/{summary['ID']}").json()["Text"]
        link = re.search(rf"{re.escape(api)}/verify#(\S+)", text)
        assert link is not None, text
        response = http.post("/v1/auth/verify", json={"token": link.group(1)})
        assert response.status_code == 204, response.text
        response = http.post("/v1/auth/login", json=credentials)
        assert response.status_code == 200, response.text
        bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
        response = http.get("/v1/creator", headers=bearer)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == name


def prometheus_sees_the_stack(url: str) -> None:
    """The stack's Prometheus scrapes the operator, the runtime and the worker, has loaded
    every alert of the chart and evaluates each without error, counts what the newcomer's
    walk-through did, and runs every dashboard and alert expression. Nothing fires."""
    alerts = {name for name, _ in alert_expressions()}
    jobs = {"coachops-operator", "coachops-runtime", "coachops-worker"}
    with httpx.Client(base_url=url, timeout=10) as prometheus:

        def query(expr: str) -> list[dict[str, Any]]:
            body = prometheus.get("/api/v1/query", params={"query": expr}).json()
            assert body["status"] == "success", (expr, body)
            return list(body["data"]["result"])

        def value(expr: str) -> float:
            found = query(expr)
            return float(found[0]["value"][1]) if found else 0.0

        # Each target is scraped on its own 5 s clock, so every count is waited for: the
        # worker's e-mail counter can arrive before the runtime's sign-up counter does.
        counted = (
            'sum(coachops_email_deliveries_total{outcome="sent"})',
            "sum(coachops_operator_leader)",
            'sum(coachops_operator_reconciles_total{kind="Creator"})',
            'sum(coachops_http_request_duration_seconds_count{route="/v1/auth/signup"})',
        )
        deadline = time.monotonic() + 60
        while True:
            targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
            rules = {r["name"]: r["health"] for g in groups for r in g["rules"]}
            counts = {expr: value(expr) for expr in counted}
            scraped = (health, rules) == (dict.fromkeys(jobs, "up"), dict.fromkeys(alerts, "ok"))
            if scraped and min(counts.values()) >= 1:
                break
            assert time.monotonic() < deadline, f"after 60 s: {health}, {rules}, {counts}"
            time.sleep(1)
        assert value("sum(coachops_operator_leader)") == 1
        for _, expr in dashboard_expressions() + alert_expressions():
            for variable, replacement in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, replacement)
            query(expr)
        assert query('ALERTS{alertstate="firing"}') == []
