"""Every PromQL expression of the Grafana dashboard and the alerts parses and reads only
metrics (and labels) the operator, the runtime and the worker export."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from coachops_devstack.paths import REPO_ROOT
from tests.observability.exported import exported, problems, reads

DASHBOARDS = REPO_ROOT / "charts" / "coachops" / "dashboards"


def _panel_targets(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for panel in panels:
        found += _panel_targets(panel.get("panels", []))
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((DASHBOARDS / "coachops.json").read_text())
    return _panel_targets(dashboard["panels"])


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DASHBOARDS / "alerts.yaml").read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def names() -> dict[str, frozenset[str]]:
    return exported()


EXPRESSIONS = dashboard_expressions() + alert_expressions()


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_expression_reads_what_the_code_exports(
    where: str, expr: str, names: dict[str, frozenset[str]]
) -> None:
    assert reads(expr).selectors, f"{where}: reads no metric"
    assert problems(expr, names) == [], f"{where}: {expr}"


def test_the_check_catches_unknown_metrics_labels_and_bad_promql(
    names: dict[str, frozenset[str]],
) -> None:
    assert problems("rate(coachops_operator_reconciles[5m])", names) == [
        "coachops_operator_reconciles is not exported"  # a counter is read as ..._total
    ]
    assert problems('coachops_operator_leader{route="/x"}', names) == [
        "coachops_operator_leader has no label route"
    ]
    assert problems("sum by (channel) (rate(coachops_http_errors_total[5m]))", names) == [
        "grouping by channel: no such label"
    ]
    assert problems('sum by (pod) (coachops_operator_leader{job="x"})', names) == []
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        reads("sum by (kind (rate(coachops_operator_errors_total[5m]))")


def test_the_dashboard_covers_each_component(names: dict[str, frozenset[str]]) -> None:
    read = {name for _, expr in dashboard_expressions() for name, _ in reads(expr).selectors}
    for expected in (
        "coachops_operator_reconciles_total",
        "coachops_operator_errors_total",
        "coachops_operator_reconciles_waiting",
        "coachops_operator_model_pull_bytes",
        "coachops_operator_drift_repairs_total",
        "coachops_http_request_duration_seconds_bucket",
        "coachops_ai_reply_duration_seconds_bucket",
        "coachops_ai_first_token_seconds_bucket",
        "coachops_channel_deliveries_total",
    ):
        assert expected in read, expected
    alerts = {alert for alert, _ in alert_expressions()}
    assert {
        "CoachopsIsolationProbeFailed",
        "CoachopsReconcileErrors",
        "CoachopsEmailDeadLetters",
        "CoachopsChannelDeadLetters",
    } <= alerts


def test_dashboard_is_one_grafana_dashboard_with_unique_panel_ids() -> None:
    dashboard = json.loads((DASHBOARDS / "coachops.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "coachops"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def _rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((DASHBOARDS / "alerts.yaml").read_text())
    return [r for g in rules["groups"] for r in g["rules"]]


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: str(r["alert"]))
def test_alerts_have_a_severity_and_say_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"]
    assert len(rule["annotations"]["description"]) > 40
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
