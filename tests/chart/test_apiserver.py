"""Every object the chart renders, validated by the real apiserver: a server-side dry-run
with strict field validation (an unknown or misplaced field fails), after the CRDs, in the
coachops-system namespace with its restricted Pod Security labels (a pod that breaks the
profile is refused, a Deployment whose pods would break it draws a warning)."""

from __future__ import annotations

import pytest
import yaml

from tests.chart.conftest import FULL_VALUES, Helm, Manifest, find
from tests.conftest import Cluster

DRY_RUN = (
    "apply",
    "--server-side",
    "--dry-run=server",
    "--validate=strict",
    "--field-manager=coachops-chart-test",
    # Other tests apply crds/ (the finalizer policy too) as another field manager; whose
    # fields they are is not what this validates.
    "--force-conflicts",
    "-f",
    "-",
)


def dry_run(cluster: Cluster, objects: list[Manifest]) -> tuple[int, str]:
    documents = "\n---\n".join(yaml.safe_dump(o) for o in objects if o["kind"] != "Namespace")
    result = cluster.kubectl(*DRY_RUN, input=documents, check=False)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((), id="default"),
        pytest.param(("--values", str(FULL_VALUES)), id="full"),
        pytest.param(
            ("--set", "runtime.autoscaling.enabled=false", "--set", "finalizerPolicy.enabled=true"),
            id="no-autoscaling-with-policy",
        ),
    ],
)
async def test_every_rendered_object_passes_strict_server_side_validation(
    cluster: Cluster, helm: Helm, system_namespace: str, values: tuple[str, ...]
) -> None:
    objects = helm.template("--include-crds", *values)
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "Job", "NetworkPolicy"} <= kinds
    code, stderr = dry_run(cluster, objects)
    assert code == 0, stderr
    # No warning either: Pod Security (warn: restricted) would name any pod template that
    # breaks the profile, and deprecated fields or APIs would be named too.
    assert "Warning" not in stderr, stderr


async def test_strict_validation_refuses_a_misspelt_field(
    cluster: Cluster, helm: Helm, system_namespace: str
) -> None:
    objects = helm.template()
    deployment = find(objects, "Deployment", "coachops-runtime")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    code, stderr = dry_run(cluster, [deployment])
    assert code != 0
    field = '.spec.template.spec.containers[name="runtime"].imagePullPolicyy'
    assert f"{field}: field not declared in schema" in stderr, stderr


async def test_restricted_namespace_refuses_or_warns_about_pods_that_break_the_profile(
    cluster: Cluster, helm: Helm, system_namespace: str
) -> None:
    # The same checks pass the chart's own pods above; here they are shown able to fail.
    objects = helm.template()
    test_pod = find(objects, "Pod", "coachops-test-readyz")
    test_pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    code, stderr = dry_run(cluster, [test_pod])
    assert code != 0
    assert 'violates PodSecurity "restricted:latest"' in stderr, stderr
    assert "allowPrivilegeEscalation != false" in stderr, stderr
    worker = find(objects, "Deployment", "coachops-worker")
    del worker["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
    code, stderr = dry_run(cluster, [worker])
    assert code == 0, stderr  # admitted, since only pods are enforced, but warned about
    assert 'Warning: would violate PodSecurity "restricted:latest"' in stderr, stderr
    assert "seccompProfile" in stderr, stderr
