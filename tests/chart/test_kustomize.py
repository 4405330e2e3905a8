"""The kustomize example (examples/gitops): each layer builds with kubectl's kustomize and
the apiserver accepts every object (server-side dry-run, strict field validation)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from coachops_crds import constants as c
from coachops_devstack.paths import REPO_ROOT
from tests.conftest import Cluster

EXAMPLE = REPO_ROOT / "examples" / "gitops"
TENANT = EXAMPLE / "tenants" / "acme-coaching"
DIGEST = "sha256:" + "0123456789abcdef" * 4
DRY_RUN = (
    "apply",
    "--server-side",
    "--dry-run=server",
    "--validate=strict",
    "--field-manager=coachops-kustomize-test",
    "--force-conflicts",  # other tests apply crds/ and the RBAC as other field managers
    "-f",
    "-",
)


def build(cluster: Cluster, directory: str) -> tuple[str, list[dict[str, Any]]]:
    built = cluster.kubectl("kustomize", str(EXAMPLE / directory))
    return built.stdout, [d for d in yaml.safe_load_all(built.stdout) if d]


def accepted(cluster: Cluster, documents: str) -> None:
    result = cluster.kubectl(*DRY_RUN, input=documents, check=False)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


@pytest.fixture
def tenant_namespace(cluster: Cluster) -> Iterator[str]:
    """The namespace the operator would make for acme-coaching (no operator runs here)."""
    name = c.creator_namespace("acme-coaching")
    made = cluster.kubectl("create", "namespace", name, check=False).returncode == 0
    try:
        yield name
    finally:
        if made:
            cluster.kubectl("delete", "namespace", name, "--wait=false")


async def test_manifests_kustomization_builds_and_validates(
    cluster: Cluster, system_namespace: str
) -> None:
    # `kubectl apply --server-side -k manifests/`, as the README shows it, dry-run.
    built = cluster.kubectl("kustomize", str(REPO_ROOT / "manifests"))
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "MutatingAdmissionPolicy", "Deployment", "Job"} <= kinds
    assert not [o for o in objects if o["kind"] in {"Creator", "CoachingProgram"}]  # no samples
    accepted(cluster, built.stdout)


async def test_platform_layer_pins_the_image_everywhere(
    cluster: Cluster, system_namespace: str
) -> None:
    text, objects = build(cluster, "platform")
    image = f"registry.example.com/coachops/coachops@{DIGEST}"
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert set(deployments) == {"coachops-operator", "coachops-runtime", "coachops-worker"}
    for deployment in deployments.values():
        for box in deployment["spec"]["template"]["spec"]["containers"]:
            assert box["image"] == image
    operator = deployments["coachops-operator"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in operator["env"]}
    assert env["COACHOPS_OPERATOR_RUNTIME_IMAGE"]["value"] == image
    assert env["COACHOPS_OPERATOR_CHROMA_URL"]["value"] == "http://chroma.stores.svc:8000"
    # The patch merged into the rendered list: the Secret references are still there.
    assert env["COACHOPS_OPERATOR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
    assert "ghcr.io" not in text
    accepted(cluster, text)


async def test_tenant_layers_declare_a_creator_and_two_programs(
    cluster: Cluster, system_namespace: str, tenant_namespace: str
) -> None:
    creator_text, creators = build(cluster, "tenants/acme-coaching/creator")
    assert [(o["kind"], o["metadata"]["name"]) for o in creators] == [("Creator", "acme-coaching")]
    programs_text, programs = build(cluster, "tenants/acme-coaching/programs")
    assert sorted((o["kind"], o["metadata"]["name"]) for o in programs) == [
        ("CoachingProgram", "first-5k"),
        ("CoachingProgram", "sleep-better"),
    ]
    assert {o["metadata"]["namespace"] for o in programs} == {tenant_namespace}
    for manifest in [*creators, *programs]:
        assert manifest["metadata"]["labels"]["gitops.coachops.dev/repository"]
    accepted(cluster, creator_text)
    accepted(cluster, programs_text)


async def test_a_program_with_a_bad_field_is_refused(
    cluster: Cluster, system_namespace: str, tenant_namespace: str
) -> None:
    # The same validation as above, shown able to fail: a CRD field misspelt in the repo.
    _, programs = build(cluster, "tenants/acme-coaching/programs")
    broken = programs[0]
    broken["metadata"]["name"] = f"broken-{uuid.uuid4().hex[:6]}"
    broken["spec"]["persona"]["tonne"] = "calm"
    result = cluster.kubectl(*DRY_RUN, input=yaml.safe_dump(broken), check=False)
    assert result.returncode != 0
    assert ".spec.persona.tonne: field not declared in schema" in result.stderr, result.stderr
