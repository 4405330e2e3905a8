"""The chart's monitoring objects: off unless enabled, the Prometheus Operator's kinds only
where the cluster serves them, valid against its real CRDs, and the dashboard and alerts
exactly the files the PromQL test checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from coachops_devstack.paths import REPO_ROOT
from tests.chart.conftest import Helm, Manifest, find, helm, system_namespace
from tests.conftest import Cluster

__all__ = ["helm", "system_namespace"]

DASHBOARDS = REPO_ROOT / "charts" / "coachops" / "dashboards"
ENABLED = (
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "metrics.prometheusRule.enabled=true",
    "--set",
    "metrics.dashboard.enabled=true",
)
MONITORING_APIS = (
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PodMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
)
KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def _monitoring(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]


def test_nothing_by_default_even_where_the_crds_exist(helm: Helm) -> None:
    objects = helm.template(*MONITORING_APIS)
    assert _monitoring(objects) == []
    assert not [o for o in objects if o["metadata"]["name"] == "coachops-dashboard"]


def test_enabled_without_the_crds_renders_no_monitoring_kind(helm: Helm) -> None:
    objects = helm.template(*ENABLED)
    assert _monitoring(objects) == []
    find(objects, "ConfigMap", "coachops-dashboard")  # a plain ConfigMap needs no CRD


def test_enabled_with_the_crds_scrapes_each_component(helm: Helm) -> None:
    objects = helm.template(
        *ENABLED, *MONITORING_APIS, "--set", "metrics.serviceMonitor.interval=15s"
    )
    assert {o["kind"] for o in _monitoring(objects)} == KINDS
    runtime = find(objects, "ServiceMonitor", "coachops-runtime")
    service = find(objects, "Service", "coachops-runtime")
    selector = runtime["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert runtime["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert "http" in port_names
    for component in ("operator", "worker"):
        monitor = find(objects, "PodMonitor", f"coachops-{component}")
        deployment = find(objects, "Deployment", f"coachops-{component}")
        pod = deployment["spec"]["template"]
        assert (
            monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        )
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports, component
    # The worker serves /metrics on the port its PodMonitor names.
    worker = find(objects, "Deployment", "coachops-worker")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in worker["containers"][0]["env"]}
    port = next(p for p in worker["containers"][0]["ports"] if p["name"] == "metrics")
    assert env["COACHOPS_WORKER_METRICS_PORT"] == str(port["containerPort"])


def test_no_worker_no_worker_monitor(helm: Helm) -> None:
    objects = helm.template(*ENABLED, *MONITORING_APIS, "--set", "worker.enabled=false")
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "PodMonitor"} == {
        "coachops-operator"
    }


def test_dashboard_configmap_carries_the_sidecar_label_and_the_file(helm: Helm) -> None:
    objects = helm.template(
        *ENABLED,
        "--set",
        "metrics.dashboard.sidecarLabel=grafana_dashboard",
        "--set",
        "metrics.dashboard.namespace=monitoring",
    )
    config = find(objects, "ConfigMap", "coachops-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["namespace"] == "monitoring"
    shipped = json.loads((DASHBOARDS / "coachops.json").read_text())
    assert json.loads(config["data"]["coachops.json"]) == shipped


def test_prometheus_rule_is_the_alerts_file_with_selectable_labels(helm: Helm) -> None:
    objects = helm.template(
        *ENABLED, *MONITORING_APIS, "--set", "metrics.prometheusRule.labels.release=kube-prometheus"
    )
    rule = find(objects, "PrometheusRule", "coachops")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    assert rule["spec"] == yaml.safe_load((DASHBOARDS / "alerts.yaml").read_text())


CRDS = Path(__file__).parent / "crds"
DRY_RUN = ("apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-")


def dry_run(cluster: Cluster, objects: list[Manifest]) -> tuple[int, str]:
    documents = "\n---\n".join(yaml.safe_dump(o) for o in objects)
    result = cluster.kubectl(
        *DRY_RUN, "--field-manager=coachops-monitoring-test", input=documents, check=False
    )
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def monitoring_crds(cluster: Cluster) -> None:
    """The Prometheus Operator's CRDs (tests/observability/crds) on the test apiserver."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))


async def test_monitoring_objects_pass_the_prometheus_operators_schemas(
    cluster: Cluster, helm: Helm, system_namespace: str, monitoring_crds: None
) -> None:
    objects = helm.template(*ENABLED, *MONITORING_APIS)
    chosen = [*_monitoring(objects), find(objects, "ConfigMap", "coachops-dashboard")]
    assert len(chosen) == 5
    code, stderr = dry_run(cluster, chosen)
    assert code == 0, stderr
    assert "Warning" not in stderr, stderr
    # The same validation refuses a misplaced field, so passing means something.
    monitor = find(objects, "ServiceMonitor", "coachops-runtime")
    monitor["spec"]["endpoints"][0]["portt"] = "http"
    code, stderr = dry_run(cluster, [monitor])
    assert code != 0
    assert "portt: field not declared in schema" in stderr, stderr
