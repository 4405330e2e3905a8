"""manifests/ is the chart rendered (scripts/render-manifests.sh), and the chart's CRDs are
the ones `make crds` writes: one source of truth, checked for drift."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from coachops_devstack.paths import REPO_ROOT
from tests.chart.conftest import CHART, Helm

RENDER = REPO_ROOT / "scripts" / "render-manifests.sh"


def check(directory: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [str(RENDER), "--check", *([str(directory)] if directory else [])]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_manifests_and_chart_crds_match_their_sources(helm: Helm) -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    for crd in (CHART / "crds").glob("*.yaml"):
        assert crd.read_bytes() == (REPO_ROOT / "crds" / crd.name).read_bytes(), crd.name


def test_a_hand_edit_of_manifests_is_caught(helm: Helm, tmp_path: Path) -> None:
    copy = tmp_path / "manifests"
    shutil.copytree(REPO_ROOT / "manifests", copy)
    deployment = copy / "operator" / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 2", "replicas: 1"))
    result = check(copy)
    assert result.returncode == 1
    assert "manifests/operator/deployment.yaml differs from the chart's rendering" in result.stdout
    assert "-  replicas: 1" in result.stdout
    assert "run scripts/render-manifests.sh" in result.stderr


def test_manifests_keep_what_the_local_stack_and_tests_apply() -> None:
    # The RBAC files apply on their own (each holds the Namespace); the kustomization lists
    # every generated file once and no object twice.
    for name in ("operator/rbac.yaml", "runtime-rbac.yaml"):
        kinds = [
            d["kind"] for d in yaml.safe_load_all((REPO_ROOT / "manifests" / name).read_text()) if d
        ]
        assert kinds[0] == "Namespace", name
    kustomization = yaml.safe_load((REPO_ROOT / "manifests" / "kustomization.yaml").read_text())
    seen: set[tuple[str, str]] = set()
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((REPO_ROOT / "manifests" / resource).read_text()):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in seen, key
                seen.add(key)
    assert ("Deployment", "coachops-operator") in seen
    assert ("CustomResourceDefinition", "creators.coachops.dev") in seen
