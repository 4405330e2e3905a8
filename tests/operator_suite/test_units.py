"""Pure functions: object builders, conditions, drift comparison, SCRAM verifiers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from typing import Any, cast

import pytest

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_operator import builders, drift, fence, leader, retry
from coachops_operator import conditions as cond
from coachops_operator.builders import CreatorRef, RuntimeEnv
from coachops_operator.database import scram_verifier
from coachops_operator.redis_users import acl_rules
from coachops_operator.settings import OperatorSettings
from coachops_operator.stores import Stores

REF = CreatorRef("acme", "1234-uid")
ENV = RuntimeEnv(image="runtime:1", chroma_url="http://chroma:8000")


def spec(**fields: object) -> CreatorSpec:
    return CreatorSpec.model_validate(
        {"displayName": "Acme", "contact": {"email": "a@example.com"}, **fields}
    )


def test_namespace_is_restricted_labelled_and_owned() -> None:
    ns = builders.namespace(REF)
    labels = ns["metadata"]["labels"]
    assert ns["metadata"]["name"] == "coachops-acme"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels[c.LABEL_CREATOR] == "acme"
    assert labels[c.LABEL_MANAGED_BY] == c.MANAGED_BY
    owner = ns["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Creator", "1234-uid", True)


def test_every_child_is_labelled_for_cleanup_and_drift() -> None:
    s = spec(isolation="dedicated")
    for manifest in [*builders.namespaced_children(REF, s), *builders.runtime_objects(REF, s, ENV)]:
        meta = manifest["metadata"]
        assert meta["namespace"] == "coachops-acme"
        assert meta["labels"][c.LABEL_CREATOR] == "acme"
        assert meta["labels"][c.LABEL_MANAGED_BY] == c.MANAGED_BY


def test_quota_follows_the_plan() -> None:
    hard = builders.resource_quota(REF, spec(plan={"cpu": "3", "memory": "6Gi", "maxPrograms": 7}))[
        "spec"
    ]["hard"]
    assert hard["limits.cpu"] == "3"
    assert hard["requests.memory"] == "6Gi"
    assert hard["count/coachingprograms.coachops.dev"] == "7"
    assert hard["pods"] == "0"  # shared tenants run no pods
    dedicated = builders.resource_quota(REF, spec(isolation="dedicated"))["spec"]["hard"]
    assert dedicated["pods"] == "8"


def test_network_policy_denies_by_default_and_allows_dns_and_stores() -> None:
    policy = builders.network_policy(REF)["spec"]
    assert policy["podSelector"] == {}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert {53, 5432, 6379} <= ports


def test_shared_tenants_get_no_runtime_objects() -> None:
    assert builders.runtime_objects(REF, spec(), ENV) == []


def test_dedicated_runtime_is_restricted_and_reads_its_own_secret() -> None:
    s = spec(isolation="dedicated", runtime={"replicas": 2, "maxReplicas": 5})
    deployment = builders.runtime_deployment(REF, s, ENV)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["COACHOPS_DATABASE_URL"] == {"name": c.TENANT_SECRET, "key": "DATABASE_URL"}
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values["COACHOPS_TENANT"] == "acme"
    assert not any("password" in str(v).lower() for v in values.values())
    hpa = builders.runtime_hpa(REF, s)["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)


def test_suspended_dedicated_runtime_scales_to_zero() -> None:
    deployment = builders.runtime_deployment(REF, spec(isolation="dedicated", suspended=True), ENV)
    assert deployment["spec"]["replicas"] == 0


def test_impossible_spec_is_explained() -> None:
    s = spec(isolation="dedicated", plan={"cpu": "1"}, runtime={"replicas": 3})
    with pytest.raises(builders.ImpossibleSpecError, match=r"exceeds plan\.cpu"):
        builders.check_feasible(s)
    builders.check_feasible(spec(isolation="dedicated"))


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), ("1Gi", 2.0**30), ("4M", 4e6), ("1.5", 1.5)],
)
def test_parse_quantity(text: str, value: float) -> None:
    assert builders.parse_quantity(text) == value


def test_secret_data_is_base64() -> None:
    secret = builders.credentials_secret(REF, {"PGPASSWORD": "s3cret"})
    assert base64.b64decode(secret["data"]["PGPASSWORD"]) == b"s3cret"
    assert "stringData" not in secret


# ---------------------------------------------------------------- conditions


def test_transition_time_moves_only_when_status_changes() -> None:
    first = cond.merge(None, [cond.Observation.false("Ready", "Pending")], 1, now="t1")
    same = cond.merge(first, [cond.Observation.false("Ready", "StillPending", "x")], 2, now="t2")
    flipped = cond.merge(same, [cond.Observation.true("Ready", "Done")], 2, now="t3")
    assert first[0]["lastTransitionTime"] == "t1"
    assert same[0]["lastTransitionTime"] == "t1"
    assert same[0]["reason"] == "StillPending"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "t3"


def test_ready_summarises_the_first_failing_part() -> None:
    parts = [
        cond.Observation.true(cond.NAMESPACE_READY, "Applied"),
        cond.Observation.false(cond.DATABASE_READY, "DatabaseUnavailable", "down"),
    ]
    ready = cond.summarize(parts)
    assert (ready.status, ready.reason) == ("False", "DatabaseUnavailable")
    all_true = [cond.Observation.true(t, "ok") for t in cond.CREATOR_PARTS]
    assert cond.summarize(all_true).status == "True"
    assert cond.summarize(all_true, suspended=True).reason == "Suspended"


# ---------------------------------------------------------------- drift


def test_drift_ignores_server_defaults_but_sees_edits() -> None:
    desired = builders.limit_range(REF, spec())
    live = drift.projection(
        {
            **desired,
            "metadata": {**desired["metadata"], "uid": "x", "resourceVersion": "9"},
            "spec": {
                "limits": [{**desired["spec"]["limits"][0], "maxLimitRequestRatio": {"cpu": "4"}}]
            },
        }
    )
    assert drift.differs(desired, live, autoscaled=True) is None
    edited = drift.projection({**desired, "spec": {"limits": []}})
    assert drift.differs(desired, edited, autoscaled=True) == "edited"
    assert drift.differs(desired, None, autoscaled=True) == "missing"


@pytest.mark.parametrize("isolation", ["shared", "dedicated"])
def test_what_the_builders_make_is_not_drift(isolation: str) -> None:
    """The index's projection of an object exactly as built must match it: a projection
    that drops a field the builder sets (e.g. the second of two namespace selectors in an
    egress rule) would report drift, and re-apply, on every check."""
    tenant = spec(isolation=isolation)
    made = [
        builders.namespace(REF),
        *builders.namespaced_children(REF, tenant),
        *builders.runtime_objects(REF, tenant, ENV),
    ]
    assert {m["kind"] for m in made} >= {"Namespace", "NetworkPolicy", "ResourceQuota"}
    for manifest in made:
        live = drift.projection(manifest, builders.SHAPES[manifest["kind"]])
        assert drift.differs(manifest, live, autoscaled=False) is None, manifest["kind"]


def test_quantities_compare_by_value() -> None:
    assert drift.contains({"cpu": "1"}, {"cpu": "1000m"})
    assert not drift.contains({"cpu": "1"}, {"cpu": "2"})


def test_autoscaled_replicas_are_not_drift() -> None:
    desired = builders.runtime_deployment(REF, spec(isolation="dedicated"), ENV)
    scaled = drift.projection({**desired, "spec": {**desired["spec"], "replicas": 4}})
    assert drift.differs(desired, scaled, autoscaled=True) is None
    assert drift.differs(desired, scaled, autoscaled=False) == "edited"


def test_secret_projection_keeps_no_values() -> None:
    live = drift.projection({"kind": "Secret", "metadata": {}, "data": {"PGPASSWORD": "c2VjcmV0"}})
    assert "c2VjcmV0" not in repr(live)


# ---------------------------------------------------------------- credentials


def test_scram_verifier_matches_rfc_5802() -> None:
    verifier = scram_verifier("pencil")
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored, server = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", base64.b64decode(salt), int(iterations))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    assert method == "SCRAM-SHA-256"
    assert base64.b64decode(stored) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server) == hmac.digest(salted, b"Server Key", "sha256")
    assert "pencil" not in verifier


def test_redis_acl_limits_keys_and_never_carries_the_password() -> None:
    rules = acl_rules("coachops:t:abc:", "hunter2")
    assert "~coachops:t:abc:*" in rules
    assert "-@dangerous" in rules
    assert "hunter2" not in " ".join(rules)


# ---------------------------------------------------------------- retry decision


def test_backoff_doubles_up_to_a_minute() -> None:
    assert [retry.backoff(n) for n in (0, 1, 2, 5, 6, 7, 50)] == [1, 2, 4, 32, 60, 60, 60]


def test_waiting_for_another_controller_polls_and_any_failure_backs_off() -> None:
    waiting = retry.Retry("NamespaceReady: QuotaPending", retry.RetryKind.POLL)
    failed = retry.Retry("DatabaseReady: DatabaseUnavailable")
    assert retry.delay([], attempt=3) is None
    assert retry.delay([waiting], attempt=5) == retry.POLL_SECONDS
    assert retry.delay([waiting, failed], attempt=5) == 32
    assert retry.delay([failed], attempt=0) == 1
    assert retry.summary([waiting, failed]) == (
        "NamespaceReady: QuotaPending; DatabaseReady: DatabaseUnavailable"
    )


# ---------------------------------------------------------------- leader fence


@pytest.mark.parametrize(("duration", "margin"), [(15, 3.0), (8, 2.0), (60, 12.0), (2, 1.0)])
def test_the_leader_stops_with_a_margin_before_the_lease_can_expire(
    duration: float, margin: float
) -> None:
    assert leader.margin(duration) == margin
    # Two renewals (every third of the duration) may fail before the deadline.
    assert duration - leader.margin(duration) > duration / 3 or duration < 3


def test_a_fence_past_its_deadline_ends_the_process_at_once() -> None:
    """os._exit in a child process: the fence's exit code and its one log line."""
    code = (
        "import logging, time\n"
        "logging.basicConfig()\n"
        "from coachops_operator import fence\n"
        "fence.check()\n"  # unarmed: nothing happens
        "fence.arm(time.monotonic() + 60)\n"
        "fence.check()\n"
        "print('still here', flush=True)\n"
        "fence.arm(time.monotonic() - 0.5)\n"
        "fence.check()\n"
        "print('never printed', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == fence.EXIT_CODE
    assert done.stdout == "still here\n"
    assert "leadership lost: the Lease was last renewed too long ago" in done.stderr


def test_dedicated_runtimes_get_the_store_addresses_the_pods_can_reach() -> None:
    def stores(**settings: str) -> Stores:
        loaded = OperatorSettings.model_validate(
            {
                "database_url": "postgresql://owner:pw@127.0.0.1:5432/coachops",
                "redis_url": "redis://admin:pw@127.0.0.1:6379",
                "chroma_url": "http://127.0.0.1:8000",
                **settings,
            }
        )
        unused = cast(Any, None)
        return Stores(unused, unused, unused, unused, unused, loaded)

    same = stores()
    assert same.runtime_env.chroma_url == "http://127.0.0.1:8000"
    assert same.pg_endpoint() == ("127.0.0.1", 5432, "coachops")
    assert same.redis_endpoint() == ("127.0.0.1", 6379)
    node = stores(
        database_host="10.0.0.2", redis_host="10.0.0.2", runtime_chroma_url="http://10.0.0.2:8000"
    )
    assert node.runtime_env.chroma_url == "http://10.0.0.2:8000"
    assert node.pg_endpoint() == ("10.0.0.2", 5432, "coachops")
    assert node.redis_endpoint() == ("10.0.0.2", 6379)
