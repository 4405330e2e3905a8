"""The chart's alerts (charts/coachops/dashboards/alerts.yaml) fire when they should and stay
quiet when they should not, as Prometheus's own rule engine evaluates them: each case is a
promtool unit test (`promtool test rules`) over synthetic series.

A case lists its input series (promtool's expanding notation: ``0+1x10`` is 0, 1, ... 10,
one sample per minute) and, per evaluation time, the alerts expected to fire with their
labels. The annotations promtool also compares are taken from alerts.yaml, with the
``{{ $labels.x }}`` of a summary filled in.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from coachops_devstack.prometheus import ALERTS, prometheus_bin
from coachops_runtime.kit.metrics import LAG_SECONDS

RULES = {
    rule["alert"]: rule
    for group in yaml.safe_load(ALERTS.read_text())["groups"]
    for rule in group["rules"]
}


@dataclass
class Case:
    """Series, then {minute: labels of each alert ``alert`` expected to fire at that time}."""

    alert: str
    series: dict[str, str]
    firing: dict[int, list[dict[str, str]]] = field(default_factory=dict)


def _annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    def fill(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    return {k: fill(v) for k, v in RULES[alert].get("annotations", {}).items()}


def _promtool_case(case: Case) -> dict[str, Any]:
    tests = []
    for minute, alerts in case.firing.items():
        expected = []
        for labels in alerts:
            full = {**RULES[case.alert].get("labels", {}), **labels}
            expected.append({"exp_labels": full, "exp_annotations": _annotations(case.alert, full)})
        tests.append({"eval_time": f"{minute}m", "alertname": case.alert, "exp_alerts": expected})
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
        "alert_rule_test": tests,
    }


def promtool_test(cases: list[Case], workdir: Path) -> subprocess.CompletedProcess[str]:
    spec = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [_promtool_case(case) for case in cases],
    }
    path = workdir / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return subprocess.run(
        [str(prometheus_bin("promtool")), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


PROBE = 'coachops_operator_errors_total{kind="Creator",reason="IsolationProbeFailed"}'
ERRORS = 'coachops_operator_errors_total{kind="CoachingProgram",reason="DatabaseUnavailable"}'
LEADER_A = 'coachops_operator_leader{pod="a"}'
PULLS = 'coachops_operator_model_pulls_total{result="failed"}'
REQUESTS = (
    'coachops_http_request_duration_seconds_count{route="/v1/creator",method="GET",status="2xx"}'
)
FAILURES = 'coachops_http_errors_total{route="/v1/creator",method="GET",status="503"}'


def _lag(late_seconds: float) -> dict[str, str]:
    """The lag histogram with the worker's own buckets when 10 due schedules a minute are
    each taken ``late_seconds`` late (histogram_quantile reads no further than the highest
    finite bucket, so the buckets decide whether the alert can fire at all)."""
    return {
        f'coachops_proactive_lag_seconds_bucket{{le="{le}"}}': (
            "0+10x40" if float(le) >= late_seconds else "0x40"
        )
        for le in [*map(str, LAG_SECONDS), "+Inf"]
    }


CASES = [
    # One escaped probe is enough, at once; another reason never raises it.
    Case(
        "CoachopsIsolationProbeFailed",
        {PROBE: "0 0 0 1 1 1", ERRORS: "0+10x5"},
        {2: [], 4: [{"kind": "Creator"}]},
    ),
    # More than 5 failures in 15 minutes, for 15 minutes: 1 a minute qualifies after the
    # window has filled and the for: has passed; 1 every 5 minutes never does.
    Case(
        "CoachopsReconcileErrors",
        {ERRORS: "0+1x40", PROBE: "0+1x40"},
        {10: [], 35: [{"kind": "CoachingProgram", "reason": "DatabaseUnavailable"}]},
    ),
    Case("CoachopsReconcileErrors", {ERRORS: "0 0 0 0 0 1 1 1 1 1 2 2 2 2 2 3x30"}, {35: []}),
    # No leader (the gauge absent: no operator scraped) for 5 minutes; a leader silences it.
    Case("CoachopsOperatorNoLeader", {LEADER_A: "_x10"}, {3: [], 7: [{}]}),
    Case(
        "CoachopsOperatorNoLeader",
        {LEADER_A: "0x10", 'coachops_operator_leader{pod="b"}': "1x10"},
        {8: []},
    ),
    Case(
        "CoachopsReconcileBacklog",
        {'coachops_operator_reconciles_waiting{kind="Creator"}': "150x20"},
        {10: [], 16: [{"kind": "Creator"}]},
    ),
    Case(
        "CoachopsReconcileBacklog",
        {'coachops_operator_reconciles_waiting{kind="Creator"}': "100x20"},
        {16: []},
    ),
    # 4 failed pulls within 30 minutes; 3 do not.
    Case("CoachopsModelPullsFailing", {PULLS: "0 1 2 3 4 4"}, {3: [], 5: [{}]}),
    Case("CoachopsModelPullsFailing", {PULLS: "0 1 2 3 3 3"}, {5: []}),
    Case(
        "CoachopsEmailDeadLetters",
        {
            'coachops_email_deliveries_total{outcome="dead"}': "0 0 1 1",
            'coachops_email_deliveries_total{outcome="sent"}': "0+50x3",
        },
        {1: [], 3: [{}]},
    ),
    Case(
        "CoachopsChannelDeadLetters",
        {
            'coachops_channel_deliveries_total{channel="sms",outcome="dead"}': "0 0 2 2",
            'coachops_channel_deliveries_total{channel="slack",outcome="dead"}': "0 0 0 0",
            'coachops_channel_deliveries_total{channel="slack",outcome="sent"}': "0+9x3",
        },
        {1: [], 3: [{"channel": "sms"}]},
    ),
    # 10 % of requests fail for longer than 10 minutes; 1 % never raises it.
    Case(
        "CoachopsRuntimeServerErrors",
        {REQUESTS: "0+100x30", FAILURES: "0+10x30"},
        {8: [], 20: [{}]},
    ),
    Case("CoachopsRuntimeServerErrors", {REQUESTS: "0+100x30", FAILURES: "0+1x30"}, {20: []}),
    # Every due message 10 minutes late (all in the +Inf bucket) for 15 minutes and more;
    # every one within a minute never raises it.
    Case(
        "CoachopsProactiveSchedulerLag",
        _lag(late_seconds=600),
        {12: [], 35: [{}]},
    ),
    Case(
        "CoachopsProactiveSchedulerLag",
        _lag(late_seconds=45),
        {35: []},
    ),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alerts")


def test_every_alert_has_a_case_that_fires_it() -> None:
    fired = {case.alert for case in CASES if any(case.firing.values())}
    assert fired == set(RULES)


def test_the_alerts_pass_promtool_check_rules() -> None:
    done = subprocess.run(
        [str(prometheus_bin("promtool")), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in done.stdout


def _case_id(case: Case) -> str:
    return f"{case.alert}-{'fires' if any(case.firing.values()) else 'quiet'}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_alert_fires_exactly_when_expected(case: Case, workdir: Path) -> None:
    done = promtool_test([case], workdir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails(workdir: Path) -> None:
    """The harness can fail: the probe alert does not fire before the escape, and promtool
    says so (and an escape expected to stay quiet is caught too)."""
    early = Case("CoachopsIsolationProbeFailed", {PROBE: "0 0 0 1 1 1"}, {1: [{"kind": "Creator"}]})
    quiet = Case("CoachopsIsolationProbeFailed", {PROBE: "0 0 0 1 1 1"}, {4: []})
    for case in (early, quiet):
        done = promtool_test([case], workdir)
        assert done.returncode != 0
        assert "CoachopsIsolationProbeFailed" in done.stdout + done.stderr
