"""What the chart renders, with its defaults and with non-trivial values (no cluster)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from coachops_crds import constants as c
from coachops_devstack.paths import REPO_ROOT
from coachops_operator import builders
from coachops_operator.settings import OperatorSettings
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.auth.keys import generate_key_file
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit.health import router as health_router
from coachops_runtime.kit.settings import Settings
from tests.chart.conftest import (
    CHART,
    FULL_VALUES,
    MAP_API,
    Helm,
    Manifest,
    env_of,
    find,
    pod_specs,
)

SECRET_SETTINGS = {
    "COACHOPS_DATABASE_URL",
    "COACHOPS_REDIS_URL",
    "COACHOPS_OPERATOR_DATABASE_URL",
    "COACHOPS_OPERATOR_REDIS_URL",
    "COACHOPS_MIGRATION_DSN",
    "COACHOPS_SMTP_PASSWORD",
    "COACHOPS_CHANNEL_KEY",
}


@pytest.fixture(scope="module")
def default(helm: Helm) -> list[Manifest]:
    return helm.template()


@pytest.fixture(scope="module")
def full(helm: Helm) -> list[Manifest]:
    return helm.template("--values", str(FULL_VALUES))


def container(objects: list[Manifest], kind: str, name: str) -> Manifest:
    manifest = find(objects, kind, name)
    spec = manifest["spec"]["template"]["spec"] if kind != "Pod" else manifest["spec"]
    containers: list[Manifest] = spec["containers"]
    assert len(containers) == 1
    return containers[0]


def test_default_objects_and_their_fixed_names(default: list[Manifest]) -> None:
    # The operator binds tenants to coachops-system/coachops-runtime: names never vary.
    rendered = sorted((m["kind"], m["metadata"]["name"]) for m in default)
    assert rendered == sorted(
        [
            ("ServiceAccount", "coachops-operator"),
            ("ClusterRole", "coachops-operator"),
            ("ClusterRoleBinding", "coachops-operator"),
            ("Role", "coachops-operator-leader-election"),
            ("RoleBinding", "coachops-operator-leader-election"),
            ("Deployment", "coachops-operator"),
            ("PodDisruptionBudget", "coachops-operator"),
            ("ServiceAccount", "coachops-runtime"),
            ("Deployment", "coachops-runtime"),
            ("Service", "coachops-runtime"),
            ("HorizontalPodAutoscaler", "coachops-runtime"),
            ("PodDisruptionBudget", "coachops-runtime"),
            ("Deployment", "coachops-worker"),
            ("NetworkPolicy", "coachops-runtime"),
            ("NetworkPolicy", "coachops-operator"),
            ("NetworkPolicy", "coachops-worker"),
            ("Job", "coachops-migrate"),
            ("Pod", "coachops-test-readyz"),
        ]
    )
    namespaced = [m for m in default if m["kind"] not in {"ClusterRole", "ClusterRoleBinding"}]
    assert {m["metadata"]["namespace"] for m in namespaced} == {c.SYSTEM_NAMESPACE}
    # No Secret, ever: credentials and keys are the user's.
    assert not [m for m in default if m["kind"] == "Secret"]


@pytest.mark.parametrize("values", ["default", "full"])
def test_every_pod_meets_the_restricted_profile(
    values: str, request: pytest.FixtureRequest
) -> None:
    objects: list[Manifest] = request.getfixturevalue(values)
    specs = list(pod_specs(objects))
    assert len(specs) >= 4
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == 10001, name  # the image's user
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for box in spec["containers"]:
            security = box["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert box["resources"]["requests"]["memory"], name
            assert box["resources"]["limits"]["memory"], name


def test_image_is_the_one_build_image_pushes(helm: Helm) -> None:
    # scripts/build-image.sh --push host:port/coachops/coachops:<key>; the node's harness
    # pushes to 127.0.0.1:<port>/coachops/coachops:<key>.
    objects = helm.template("--set", "image.registry=127.0.0.1:5123", "--set", "image.tag=0f1e2d")
    expected = "127.0.0.1:5123/coachops/coachops:0f1e2d"
    images = {box["image"] for _, spec in pod_specs(objects) for box in spec["containers"]}
    assert images == {expected}
    operator = container(objects, "Deployment", "coachops-operator")
    # Dedicated runtimes run the same image.
    assert env_of(operator)["COACHOPS_OPERATOR_RUNTIME_IMAGE"]["value"] == expected
    # One image, three commands.
    commands = {
        name: box["command"][:3] for name, spec in pod_specs(objects) for box in spec["containers"]
    }
    assert commands["Deployment/coachops-operator"] == ["python3", "-m", "coachops_operator"]
    assert commands["Deployment/coachops-runtime"] == ["python3", "-m", "coachops_runtime"]
    assert commands["Deployment/coachops-worker"] == ["python3", "-m", "coachops_runtime.worker"]
    assert commands["Job/coachops-migrate"] == ["python3", "-m", "coachops_runtime.db.migrate"]


def test_default_image_is_the_app_version(default: list[Manifest]) -> None:
    chart = yaml.safe_load((REPO_ROOT / "charts" / "coachops" / "Chart.yaml").read_text())
    # The chart's appVersion is the project's version (what the image is tagged by default).
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    runtime = container(default, "Deployment", "coachops-runtime")
    assert runtime["image"] == f"ghcr.io/coachops/coachops:{chart['appVersion']}"


def test_operator_runs_two_replicas_with_leader_election(default: list[Manifest]) -> None:
    deployment = find(default, "Deployment", "coachops-operator")
    assert deployment["spec"]["replicas"] == 2
    operator = container(default, "Deployment", "coachops-operator")
    assert "--standalone" not in operator["args"]
    env = env_of(operator)
    assert env["COACHOPS_OPERATOR_LEASE_NAMESPACE"]["value"] == c.SYSTEM_NAMESPACE
    lease_role = find(default, "Role", "coachops-operator-leader-election")
    assert lease_role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    assert find(default, "PodDisruptionBudget", "coachops-operator")["spec"]["minAvailable"] == 1


def test_probes_name_routes_the_processes_serve(default: list[Manifest]) -> None:
    routes = {route.path for route in health_router.routes}  # type: ignore[attr-defined]
    runtime = container(default, "Deployment", "coachops-runtime")
    assert runtime["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert runtime["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert {"/readyz", "/livez"} <= routes
    assert runtime["ports"] == [{"name": "http", "containerPort": 8000}]
    assert runtime["command"][-2:] == ["--port", "8000"]
    operator = container(default, "Deployment", "coachops-operator")
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert "--liveness-port=8080" in operator["args"]
    assert {"name": "liveness", "containerPort": 8080} in operator["ports"]


def test_runtime_rolls_without_dropping_requests(default: list[Manifest]) -> None:
    deployment = find(default, "Deployment", "coachops-runtime")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert "replicas" not in deployment["spec"]  # the HorizontalPodAutoscaler owns it
    runtime = container(default, "Deployment", "coachops-runtime")
    assert runtime["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    hpa = find(default, "HorizontalPodAutoscaler", "coachops-runtime")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)


def test_rbac_has_no_wildcards_and_matches_the_operator(helm: Helm) -> None:
    # With the ClusterRole the operator applies at start-up (manifests/ renders it).
    objects = helm.template("--set", "runtime.programsClusterRole=true")
    for manifest in objects:
        for rule in manifest.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (manifest["metadata"]["name"], rule)
    # The same labels and rules as the operator's: applied from manifests/ by kubectl, then
    # by the operator, the object does not change.
    chart_role = find(objects, "ClusterRole", builders.PROGRAM_WRITER)
    operator_role = next(
        r for r in builders.cluster_roles() if r["metadata"]["name"] == builders.PROGRAM_WRITER
    )
    assert chart_role["rules"] == operator_role["rules"]
    assert chart_role["metadata"]["labels"] == operator_role["metadata"]["labels"]
    account = find(objects, "ServiceAccount", c.SHARED_RUNTIME_SERVICE_ACCOUNT)
    assert account["metadata"]["namespace"] == c.SYSTEM_NAMESPACE


def _settings_names(model: Any, prefix: str) -> set[str]:
    names = set()
    for field, info in model.model_fields.items():
        names.add(prefix + field.upper())
        alias = info.validation_alias
        for choice in getattr(alias, "choices", []):
            names.add(str(choice))
    return names


@pytest.mark.parametrize("values", ["default", "full"])
def test_every_variable_is_a_setting_and_secrets_come_from_secrets(
    values: str, request: pytest.FixtureRequest
) -> None:
    # pydantic-settings ignores unknown variables: a misspelt one would change nothing.
    objects: list[Manifest] = request.getfixturevalue(values)
    runtime_names = (
        _settings_names(Settings, "COACHOPS_")
        | _settings_names(AiSettings, "COACHOPS_AI_")
        | _settings_names(ChannelSettings, "COACHOPS_CHANNEL_")
    )
    known = {
        "Deployment/coachops-operator": _settings_names(OperatorSettings, "COACHOPS_OPERATOR_"),
        "Deployment/coachops-runtime": runtime_names,
        "Deployment/coachops-worker": runtime_names,
        "Job/coachops-migrate": {"COACHOPS_MIGRATION_DSN"},
    }
    for name, spec in pod_specs(objects):
        for box in spec["containers"]:
            for variable, entry in env_of(box).items():
                if name in known:
                    assert variable in known[name], f"{name}: {variable} is no setting"
                if variable in SECRET_SETTINGS:
                    assert "value" not in entry, f"{name}: {variable} rendered in clear"
                    assert entry["valueFrom"]["secretKeyRef"]["name"], (name, variable)


def test_non_trivial_values_take_effect(full: list[Manifest]) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    runtime = container(full, "Deployment", "coachops-runtime")
    assert runtime["image"] == f"127.0.0.1:5000/coachops/coachops@{digest}"
    assert runtime["imagePullPolicy"] == "Always"
    env = env_of(runtime)
    assert env["COACHOPS_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg-credentials",
        "key": "runtime",
    }
    assert env["COACHOPS_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "smtp-credentials"
    assert env["COACHOPS_CHANNEL_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "channel-key",
        "key": "fernet",
    }
    assert env["COACHOPS_DB_POOL_SIZE"]["value"] == "10"
    assert "lifecycle" not in runtime  # preStopSeconds: 0
    deployment = find(full, "Deployment", "coachops-runtime")
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "podAntiAffinity" in pod["affinity"]
    assert not [m for m in full if m["kind"] == "HorizontalPodAutoscaler"]
    assert find(full, "Service", "coachops-runtime")["spec"]["type"] == "NodePort"
    operator = find(full, "Deployment", "coachops-operator")
    op_spec = operator["spec"]["template"]["spec"]
    assert operator["spec"]["replicas"] == 3
    assert "topologySpreadConstraints" not in op_spec  # topologySpread.enabled: false
    assert op_spec["tolerations"][0]["key"] == "dedicated"
    assert op_spec["volumes"][0]["secret"]["secretName"] == "platform-jwt-public"
    op_env = env_of(op_spec["containers"][0])
    assert op_env["COACHOPS_OPERATOR_DATABASE_HOST"]["value"] == "postgres.stores.svc"
    assert op_env["COACHOPS_OPERATOR_MODEL_GC_GRACE"]["value"] == "3600"
    assert "--verbose" in op_spec["containers"][0]["args"]
    assert find(full, "Deployment", "coachops-worker")["spec"]["replicas"] == 2
    job = container(full, "Job", "coachops-migrate")
    assert "--runtime-role=coachops_app" in job["command"]
    assert not [m for m in full if m["kind"] == "Pod"]  # tests.enabled: false
    namespace = find(full, "Namespace", c.SYSTEM_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(m["metadata"]["labels"]["team"] == "platform" for m in full)
    policy = find(full, "NetworkPolicy", "coachops-runtime")
    assert policy["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


def test_worker_and_policies_can_be_left_out(helm: Helm) -> None:
    objects = helm.template("--set", "worker.enabled=false", "--set", "networkPolicy.enabled=false")
    kinds = {(m["kind"], m["metadata"]["name"]) for m in objects}
    assert ("Deployment", "coachops-worker") not in kinds
    assert not [kind for kind, _ in kinds if kind == "NetworkPolicy"]


def test_migrations_hook_runs_before_install_and_upgrade(default: list[Manifest]) -> None:
    job = find(default, "Job", "coachops-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = job["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False  # no Kubernetes credentials
    env = env_of(spec["containers"][0])
    # The schema owner's DSN, the same key the operator reads.
    assert env["COACHOPS_MIGRATION_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "coachops-database",
        "key": "owner-url",
    }
    test_pod = find(default, "Pod", "coachops-test-readyz")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    # Removed once it passed: nothing of the release is left after `helm uninstall`.
    assert test_pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == (
        "before-hook-creation,hook-succeeded"
    )
    assert "/readyz" in test_pod["spec"]["containers"][0]["command"][-1]


def test_other_namespaces_are_refused(helm: Helm) -> None:
    refused = helm.run("template", "coachops", str(CHART), "-n", "apps", check=False)
    assert refused.returncode != 0
    assert 'must be installed in the namespace coachops-system (got "apps")' in refused.stderr


@pytest.mark.parametrize(
    ("enabled", "api_versions", "rendered"),
    [
        ("auto", [], False),
        ("auto", [MAP_API], True),
        ("false", [MAP_API], False),
        ("true", [], True),
    ],
)
def test_finalizer_policy_where_the_cluster_serves_it(
    helm: Helm, enabled: str, api_versions: list[str], rendered: bool
) -> None:
    args = ["--set", f"finalizerPolicy.enabled={enabled}"]
    for api in api_versions:
        args += ["--api-versions", api]
    objects = helm.template(*args)
    policies = [m for m in objects if m["kind"].startswith("MutatingAdmissionPolicy")]
    assert bool(policies) is rendered
    if rendered:
        # The same policy `make crds` writes next to the CRDs (labels aside).
        source = Path(REPO_ROOT / "crds" / f"{c.GROUP}_finalizer-policy.yaml")
        expected = list(yaml.safe_load_all(source.read_text()))
        assert [(m["kind"], m["spec"]) for m in policies] == [
            (m["kind"], m["spec"]) for m in expected
        ]


@pytest.mark.parametrize("values", ["default", "full"])
def test_rendered_settings_validate_as_the_processes_read_them(
    values: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The environment each container gets, with a valid stand-in for every Secret key it
    # references, passes the settings' own validation (production: no default secret).
    objects: list[Manifest] = request.getfixturevalue(values)
    generate_key_file(tmp_path, "2026-01-01")
    stand_ins = {
        "DATABASE_URL": "postgresql://role:s3cret-pass@db.example:5432/coachops",
        "REDIS_URL": "redis://user:s3cret-pass@redis.example:6379/0",
        "CHANNEL_KEY": Fernet.generate_key().decode(),
        "SMTP_PASSWORD": "s3cret-pass",
    }

    def environment(box: Manifest) -> dict[str, str]:
        env = {}
        for name, entry in env_of(box).items():
            if "value" in entry:
                env[name] = entry["value"]
            else:
                env[name] = next(v for k, v in stand_ins.items() if name.endswith(k))
        return env

    for name in [n for n in os.environ if n.startswith("COACHOPS_")]:
        monkeypatch.delenv(name)
    for kind, component, models in (
        ("Deployment", "coachops-runtime", (Settings, AiSettings, ChannelSettings)),
        ("Deployment", "coachops-worker", (Settings, AiSettings, ChannelSettings)),
        ("Deployment", "coachops-operator", (OperatorSettings,)),
    ):
        with monkeypatch.context() as scoped:
            for variable, value in environment(container(objects, kind, component)).items():
                scoped.setenv(variable, value)
            scoped.setenv("COACHOPS_JWT_KEYS_DIR", str(tmp_path))  # the mounted Secret
            for model in models:
                settings = model()  # raises on any value the process would refuse
                if isinstance(settings, Settings):
                    # Production's checks ran: no default secret, a JWT key present.
                    assert settings.environment == "production"


def test_notes_tell_what_to_do_next(helm: Helm, tmp_path: Path) -> None:
    def notes(*args: str) -> str:
        installed = helm.run(
            f"--kubeconfig={tmp_path / 'none'}",  # a client-side dry run reaches no cluster
            "install", "coachops", str(CHART), "-n", "coachops-system", "--dry-run=client",
            *args,
        )  # fmt: skip
        return installed.stdout.partition("NOTES:")[2]

    default = notes()
    # The Secrets to create first, by the names and keys the values give them.
    assert "coachops-database: keys owner-url, runtime-url" in default
    assert "coachops-jwt: one <kid>.pem RSA private key per file" in default
    assert "smtp-credentials" not in default
    assert "helm test coachops -n coachops-system" in default
    assert "kubectl apply -f manifests/samples/creator.yaml" in default
    renamed = notes("--set", "database.existingSecret=pg", "--set", "smtp.existingSecret=smtp")
    assert "pg: keys owner-url, runtime-url" in renamed
    assert "smtp: key password (SMTP password)" in renamed
