"""The CRDs: generated from the models, structural, and enforcing their rules at the apiserver."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import pytest
import yaml

from coachops_crds import constants as c
from coachops_crds.schema import CRD_DIR, rendered, rendered_crds
from tests.conftest import Cluster
from tests.operator_suite.conftest import creator_manifest, program_manifest


def test_committed_yaml_matches_the_models() -> None:
    for name, text in rendered().items():
        assert (CRD_DIR / name).read_text() == text, f"{name} drifted: run `make crds`"
    check = subprocess.run(
        [sys.executable, "-m", "coachops_crds", "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    missing = [] if "description" in schema or path.endswith("metadata") else [path]
    for name, sub in schema.get("properties", {}).items():
        if path == "" and name in ("apiVersion", "kind", "metadata"):
            continue
        missing += _walk(sub, f"{path}.{name}")
    if "properties" in schema.get("items", {}):
        missing += _walk(schema["items"], f"{path}[]")
    return missing


@pytest.mark.parametrize("name", sorted(rendered_crds()))
def test_every_field_is_documented(name: str) -> None:
    crd = yaml.safe_load(rendered_crds()[name])
    version = crd["spec"]["versions"][0]
    assert _walk(version["schema"]["openAPIV3Schema"]) == []
    assert crd["spec"]["names"]["categories"] == ["coachops"]
    assert version["subresources"] == {"status": {}}


def created(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, Any]:
    """The object as the apiserver would store it (admission included), not stored."""
    result = cluster.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=yaml.safe_dump(manifest)
    )
    made: dict[str, Any] = yaml.safe_load(result.stdout)
    return made


async def test_new_objects_are_born_with_the_finalizer(
    cluster: Cluster, crds: None, namespace: str
) -> None:
    """The admission policy in crds/ adds the operator's finalizer on create, keeping
    any other finalizer and never adding it twice."""
    creator = creator_manifest("born-final")
    deadline = time.monotonic() + 30
    while created(cluster, creator)["metadata"].get("finalizers") != [c.FINALIZER]:
        assert time.monotonic() < deadline, "the finalizer policy never took effect"
        await asyncio.sleep(0.5)  # a new policy reaches admission within seconds

    creator["metadata"]["finalizers"] = ["example.com/keep"]
    assert created(cluster, creator)["metadata"]["finalizers"] == [
        "example.com/keep",
        c.FINALIZER,
    ]
    creator["metadata"]["finalizers"] = [c.FINALIZER, "example.com/keep"]
    assert created(cluster, creator)["metadata"]["finalizers"] == [
        c.FINALIZER,
        "example.com/keep",
    ]
    program = program_manifest("born-final", "first")
    program["metadata"]["namespace"] = namespace
    assert created(cluster, program)["metadata"]["finalizers"] == [c.FINALIZER]


def apply(cluster: Cluster, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(manifest), check=False
    )


INVALID_CREATORS = [
    ({"contact": {"email": "not-an-email"}}, "spec.contact.email"),
    (
        {"runtime": {"replicas": 5, "maxReplicas": 2}},
        "runtime.maxReplicas must be greater than or equal to runtime.replicas",
    ),
    ({"plan": {"cpu": "two"}}, "must be a Kubernetes quantity"),
    (
        {"runtime": {"resources": {"cpuRequest": "2", "cpuLimit": "1"}}},
        "cpuRequest must not exceed cpuLimit",
    ),
    ({"isolation": "private"}, 'Unsupported value: "private"'),
    ({"reclaimPolicy": "Keep"}, 'Unsupported value: "Keep"'),
]


@pytest.mark.parametrize(("spec", "message"), INVALID_CREATORS)
async def test_invalid_creators_are_rejected_with_a_readable_message(
    cluster: Cluster, crds: None, spec: dict[str, Any], message: str
) -> None:
    manifest = creator_manifest("invalid-one")
    manifest["spec"].update(spec)
    result = apply(cluster, manifest)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


async def test_creator_name_must_fit_a_namespace(cluster: Cluster, crds: None) -> None:
    result = apply(cluster, creator_manifest("x" * 45))
    assert result.returncode != 0
    assert "at most 40 characters" in result.stderr


async def test_valid_creator_gets_defaults(cluster: Cluster, crds: None) -> None:
    result = cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-o",
        "yaml",
        "-f",
        "-",
        input=yaml.safe_dump(creator_manifest("defaults-one")),
    )
    spec = yaml.safe_load(result.stdout)["spec"]
    assert spec["isolation"] == "shared"
    assert spec["reclaimPolicy"] == "Retain"
    assert spec["plan"]["maxPrograms"] == 3


async def test_program_channel_needs_a_secret(cluster: Cluster, crds: None) -> None:
    manifest = program_manifest("x", "p", channels=[{"type": "telegram"}])
    manifest["metadata"]["namespace"] = "default"
    result = apply(cluster, manifest)
    assert result.returncode != 0
    assert "needs secretRef" in result.stderr


async def test_program_embedding_model_is_immutable(
    cluster: Cluster, namespace: str, crds: None
) -> None:
    manifest = program_manifest("x", "immutable")
    manifest["metadata"]["namespace"] = namespace
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    manifest["spec"]["model"] = {"embedding": "other/embedder:latest"}
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0
    assert "model.embedding is immutable" in result.stderr


async def test_kubectl_explain_teaches(cluster: Cluster, crds: None) -> None:
    explained = cluster.kubectl("explain", "creators.spec.reclaimPolicy").stdout
    assert "Retain keeps" in explained
    listed = cluster.kubectl("get", "coachops", "-A").returncode
    assert listed == 0
