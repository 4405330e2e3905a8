"""`helm lint --strict`, and values the chart refuses with a message that says what is wrong."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.chart.conftest import CHART, FULL_VALUES, NAMESPACE, Helm, find


@pytest.mark.parametrize(
    "values", [pytest.param((), id="default"), pytest.param(("-f", str(FULL_VALUES)), id="full")]
)
def test_lint_strict(helm: Helm, values: tuple[str, ...]) -> None:
    result = helm.run("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout, result.stdout
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_lint_strict_fails_on_a_broken_value(helm: Helm) -> None:
    result = helm.run(
        "lint", "--strict", str(CHART), "-n", NAMESPACE, "--set", "image.pullPolicy=Often",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "value must be one of 'IfNotPresent', 'Always', 'Never'" in result.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("image.digest=sha256:abc", "at '/image/digest': 'sha256:abc' does not match pattern"),
        ("image.tag=v1:2", "at '/image/tag': 'v1:2' does not match pattern"),
        ("database.existingSecret=", "at '/database/existingSecret': minLength: got 0, want 1"),
        (
            "database.existingSecret=Not_A_Name",
            "at '/database/existingSecret': 'Not_A_Name' does not match pattern",
        ),
        ("jwt.existingSecret=", "at '/jwt/existingSecret': minLength: got 0, want 1"),
        ("redis.adminUrlKey=a/b", "at '/redis/adminUrlKey': 'a/b' does not match pattern"),
        ("chroma.url=chroma:8000", "at '/chroma/url': 'chroma:8000' does not match pattern"),
        ("operator.replicas=0", "at '/operator/replicas': minimum: got 0, want 1"),
        ("runtime.port=70000", "at '/runtime/port': maximum: got 70,000, want 65,535"),
        ("runtime.autoscaling.enabled=yes", "at '/runtime/autoscaling/enabled': got string"),
        ("runtime.service.type=Ingress", "at '/runtime/service/type': value must be one of"),
        ("runtime.resources.limits.memory=lots", "'lots' does not match pattern"),
        ("smtp.tls=ssl", "at '/smtp/tls': value must be one of 'none', 'starttls', 'tls'"),
        ("logLevel=LOUD", "at '/logLevel': value must be one of"),
        ("namespace.podSecurity=strict", "at '/namespace/podSecurity': value must be one of"),
        ("finalizerPolicy.enabled=maybe", "at '/finalizerPolicy/enabled': value must be one of"),
        ("operatr.replicas=2", "at '': additional properties 'operatr' not allowed"),
        ("runtime.replica=2", "at '/runtime': additional properties 'replica' not allowed"),
    ],
)
def test_schema_refuses_bad_values_with_the_reason(helm: Helm, setting: str, message: str) -> None:
    stderr = helm.fails("--set", setting)
    assert "values don't meet the specifications of the schema" in stderr, stderr
    assert message in stderr, stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            ["runtime.autoscaling.maxReplicas=1"],
            "runtime.autoscaling.maxReplicas (1) must be at least "
            "runtime.autoscaling.minReplicas (2)",
        ),
        (
            ["smtp.existingSecret=smtp", "smtp.tls=none"],
            "smtp.existingSecret is set but smtp.tls is none: the password would travel in clear",
        ),
        (
            ["operator.pdb.minAvailable=2"],
            "operator.pdb.minAvailable (2) must be below operator.replicas (2)",
        ),
        (
            ["runtime.autoscaling.enabled=false", "runtime.replicas=1"],
            "runtime.pdb.minAvailable (1) must be below the runtime's replicas (1)",
        ),
    ],
)
def test_values_that_contradict_each_other_are_refused(
    helm: Helm, settings: list[str], message: str
) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]
    assert message in helm.fails(*args)


def test_good_values_pass_the_schema(helm: Helm) -> None:
    # Each a boundary or an alternative form the schema must keep accepting.
    objects = helm.template(
        "--set", "runtime.pdb.minAvailable=50%",
        "--set", "image.registry=",
        "--set", "runtime.resources.limits.cpu=500m",
        "--set", "operator.replicas=1", "--set", "operator.pdb.enabled=false",
        "--set", "finalizerPolicy.enabled=false",
        "--set-json", 'runtime.extraEnv=[{"name":"COACHOPS_DB_POOL_SIZE","value":"5"}]',
    )  # fmt: skip
    runtime = find(objects, "Deployment", "coachops-runtime")
    assert runtime["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "coachops/coachops:"
    )
    assert find(objects, "PodDisruptionBudget", "coachops-runtime")["spec"]["minAvailable"] == "50%"


def test_schema_describes_every_default_value() -> None:
    # values.yaml and values.schema.json list the same keys (additionalProperties is false
    # everywhere but in the monitoring sections, which other templates extend).
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(value: object, node: dict[str, object], path: str) -> None:
        if not isinstance(value, dict) or node.get("type") != "object":
            return
        properties = node.get("properties", {})
        assert isinstance(properties, dict)
        for key, child in value.items():
            assert key in properties, f"{path}.{key} is not in values.schema.json"
            walk(child, properties[key], f"{path}.{key}")

    walk(values, schema, "")


def test_every_value_is_commented() -> None:
    # Each key of values.yaml has a comment line above it (or on its line); the entries of
    # a resources block are read as one value with the comment above `resources:`.
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    previous = ""
    missing = []
    for number, line in enumerate(lines, 1):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):( |$)", line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            while parents and parents[-1][0] >= indent:
                parents.pop()
            within_value = parents and parents[-1][1] in {"resources", "matchLabels"}
            commented = previous.lstrip().startswith("#") or "#" in line
            if not commented and not within_value:
                missing.append(f"{number}: {line.strip()}")
            parents.append((indent, key))
        if line.strip():
            previous = line
    assert not missing, "keys without a comment:\n" + "\n".join(missing)


def test_helm_is_the_version_tools_helm_pins(helm: Helm) -> None:
    go_mod = (CHART.parents[1] / "tools" / "helm" / "go.mod").read_text()
    pinned = re.search(r"^require helm\.sh/helm/v4 (v\S+)$", go_mod, re.M)
    assert pinned is not None
    assert helm.run("version", "--short").stdout.startswith(pinned.group(1))
