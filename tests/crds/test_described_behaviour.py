"""What the Creator's field descriptions promise about the objects the operator builds.

Each case names a field, words its description must keep, and a check of the operator's
pure builders that makes those words true: a description that changes what it promises,
or a builder that stops keeping it, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_operator import builders
from tests.crds.test_descriptions import fields

REF = builders.CreatorRef(name="acme", uid="0000-uid")
ENV = builders.RuntimeEnv(image="registry.example/coachops-runtime:1", chroma_url="http://c")
PROGRAM_COUNT = f"count/{c.PROGRAM_PLURAL}.{c.GROUP}"


def spec(**fields_: Any) -> CreatorSpec:
    return CreatorSpec.model_validate(
        {"displayName": "Acme", "contact": {"email": "a@example.com"}, **fields_}
    )


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


def dedicated(**fields_: Any) -> dict[str, dict[str, Any]]:
    return by_kind(builders.runtime_objects(REF, spec(isolation="dedicated", **fields_), ENV))


def container(**fields_: Any) -> dict[str, Any]:
    pod = dedicated(**fields_)["Deployment"]["spec"]["template"]["spec"]
    only: dict[str, Any] = pod["containers"][0]
    return only


def check_max_programs() -> None:
    quota = builders.resource_quota(REF, spec(plan={"maxPrograms": 7}))
    assert quota["kind"] == "ResourceQuota"
    assert quota["spec"]["hard"][PROGRAM_COUNT] == "7"


def check_plan_cpu() -> None:
    hard = builders.resource_quota(REF, spec(plan={"cpu": "3"}))["spec"]["hard"]
    assert (hard["requests.cpu"], hard["limits.cpu"]) == ("3", "3")


def check_plan_memory() -> None:
    hard = builders.resource_quota(REF, spec(plan={"memory": "6Gi"}))["spec"]["hard"]
    assert (hard["requests.memory"], hard["limits.memory"]) == ("6Gi", "6Gi")


def check_isolation() -> None:
    assert builders.runtime_objects(REF, spec(isolation="shared"), ENV) == []
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= dedicated().keys()


def check_runtime_ignored_when_shared() -> None:
    shared = spec(isolation="shared", runtime={"replicas": 5, "maxReplicas": 9})
    assert builders.runtime_objects(REF, shared, ENV) == []
    assert builders.resource_quota(REF, shared)["spec"]["hard"]["pods"] == "0"


def check_replicas() -> None:
    objects = dedicated(runtime={"replicas": 3, "maxReplicas": 5})
    assert objects["Deployment"]["spec"]["replicas"] == 3
    assert objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3


def check_max_replicas() -> None:
    hpa = dedicated(runtime={"replicas": 2, "maxReplicas": 6})["HorizontalPodAutoscaler"]
    assert hpa["spec"]["maxReplicas"] == 6


def check_image() -> None:
    assert container()["image"] == ENV.image
    assert container(runtime={"image": "mine:2"})["image"] == "mine:2"


def check_resources() -> None:
    resources = {
        "cpuRequest": "100m",
        "cpuLimit": "500m",
        "memoryRequest": "128Mi",
        "memoryLimit": "256Mi",
    }
    made = container(runtime={"resources": resources})["resources"]
    assert made == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }


def check_suspended() -> None:
    assert dedicated(suspended=True)["Deployment"]["spec"]["replicas"] == 0
    assert dedicated(suspended=False)["Deployment"]["spec"]["replicas"] == 2


CASES: list[tuple[str, str, Callable[[], None]]] = [
    ("spec.plan.maxPrograms", "ResourceQuota", check_max_programs),
    ("spec.plan.cpu", "(ResourceQuota)", check_plan_cpu),
    ("spec.plan.memory", "(ResourceQuota)", check_plan_memory),
    ("spec.isolation", "runtime Deployment, Service and autoscaler", check_isolation),
    ("spec.runtime", "ignored when isolation is shared", check_runtime_ignored_when_shared),
    ("spec.runtime.replicas", "Minimum number of runtime pods", check_replicas),
    ("spec.runtime.maxReplicas", "autoscaler", check_max_replicas),
    ("spec.runtime.image", "empty uses the operator's default", check_image),
    ("spec.runtime.resources.cpuRequest", "CPU request per runtime pod", check_resources),
    ("spec.runtime.resources.memoryLimit", "Memory limit per runtime pod", check_resources),
    ("spec.suspended", "a dedicated runtime scales to zero", check_suspended),
]


@pytest.mark.parametrize(("path", "words", "check"), CASES, ids=[case[0] for case in CASES])
def test_the_description_and_the_builders_agree(
    path: str, words: str, check: Callable[[], None]
) -> None:
    descriptions = [node.description for node in fields(c.CREATOR_KIND) if node.path == path]
    assert descriptions, f"no field {path}"
    assert any(words in d for d in descriptions), f"{path} no longer says {words!r}"
    check()
