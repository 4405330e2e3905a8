"""Helm and the chart: the pinned helm binary (scripts/build-helm.sh builds it once and
reuses it) and helpers that render charts/coachops into objects."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from coachops_devstack.crds import install_crds
from coachops_devstack.paths import REPO_ROOT
from tests.conftest import Cluster, kubectl_path

CHART = REPO_ROOT / "charts" / "coachops"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
NAMESPACE = "coachops-system"
MAP_API = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Helm:
    binary: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, *args: str, namespace: str = NAMESPACE) -> list[Manifest]:
        """The objects `helm template` renders (hooks and tests included)."""
        out = self.run("template", "coachops", str(CHART), "--namespace", namespace, *args)
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    def fails(self, *args: str) -> str:
        """Render with ``args``, expect a refusal, return what helm said."""
        result = self.run(
            "template", "coachops", str(CHART), "--namespace", NAMESPACE, *args, check=False
        )
        assert result.returncode != 0, f"helm accepted {args}"
        return result.stderr


@pytest.fixture(scope="session")
def helm() -> Helm:
    built = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-helm.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return Helm(Path(built.stdout.strip().splitlines()[-1]))


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def pod_specs(objects: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(kind/name, pod spec) of every object that runs pods."""
    for manifest in objects:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in {"Deployment", "Job"}:
            yield name, manifest["spec"]["template"]["spec"]
        elif manifest["kind"] == "Pod":
            yield name, manifest["spec"]


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {var["name"]: var for var in container.get("env", [])}


@pytest.fixture(scope="session")
def system_namespace(cluster: Cluster, helm: Helm) -> str:
    """The CRDs, and the chart's own Namespace object (restricted Pod Security) applied for
    real: server-side dry-runs of namespaced objects need their namespace to exist."""
    install_crds(kubectl_path(), cluster.kubeconfig, force_conflicts=True)
    namespace = find(helm.template("--set", "namespace.create=true"), "Namespace", NAMESPACE)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    return NAMESPACE
