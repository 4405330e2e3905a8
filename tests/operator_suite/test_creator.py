"""Creator reconciliation against the real apiserver, PostgreSQL, Redis and ChromaDB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from redis.exceptions import NoPermissionError

from coachops_crds import constants as c
from coachops_crds import rls
from coachops_devstack.stack import Stack
from tests.conftest import Cluster
from tests.operator_suite.conftest import (
    Kube,
    Operator,
    condition,
    eventually,
    wait_ready,
)

SHARED_CHILDREN = [
    ("ServiceAccount", c.TENANT_SERVICE_ACCOUNT),
    ("RoleBinding", "coachops-tenant-runtime"),
    ("RoleBinding", "coachops-runtime-programs"),
    ("ResourceQuota", "coachops-plan"),
    ("LimitRange", "coachops-defaults"),
    ("NetworkPolicy", "coachops-tenant"),
    ("Secret", c.TENANT_SECRET),
]
RUNTIME_CHILDREN = [
    ("Deployment", c.RUNTIME_NAME),
    ("Service", c.RUNTIME_NAME),
    ("HorizontalPodAutoscaler", c.RUNTIME_NAME),
    ("PodDisruptionBudget", c.RUNTIME_NAME),
]


# kind -> (API class, the resource part of its read_namespaced_*/delete_namespaced_* methods)
KIND_APIS: dict[str, tuple[Any, str]] = {
    "ServiceAccount": (client.CoreV1Api, "service_account"),
    "Secret": (client.CoreV1Api, "secret"),
    "Service": (client.CoreV1Api, "service"),
    "ResourceQuota": (client.CoreV1Api, "resource_quota"),
    "LimitRange": (client.CoreV1Api, "limit_range"),
    "Role": (client.RbacAuthorizationV1Api, "role"),
    "RoleBinding": (client.RbacAuthorizationV1Api, "role_binding"),
    "NetworkPolicy": (client.NetworkingV1Api, "network_policy"),
    "Deployment": (client.AppsV1Api, "deployment"),
    "HorizontalPodAutoscaler": (client.AutoscalingV2Api, "horizontal_pod_autoscaler"),
    "PodDisruptionBudget": (client.PolicyV1Api, "pod_disruption_budget"),
}


def namespaced(cluster: Cluster, verb: str, kind: str) -> Any:
    """The client method ``{verb}_namespaced_<resource>`` for ``kind``."""
    api_class, resource = KIND_APIS[kind]
    return getattr(api_class(cluster.api), f"{verb}_namespaced_{resource}")


async def read(cluster: Cluster, kind: str, namespace: str, name: str) -> Any:
    try:
        return await namespaced(cluster, "read", kind)(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


async def delete(cluster: Cluster, kind: str, namespace: str, name: str) -> None:
    await namespaced(cluster, "delete", kind)(name, namespace)


async def acl(admin: aioredis.Redis, *args: str) -> Any:
    execute: Any = admin.execute_command
    return await execute(*args)


async def role_exists(conn: asyncpg.Connection, role: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))


# ---------------------------------------------------------------- create, update, suspend


async def test_shared_creator_becomes_ready_with_every_child(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
    stack: Stack,
) -> None:
    name = new_creator_name("shared")
    creators.append(name)
    await kube.create_creator(name)
    obj = await wait_ready(kube, name)
    status = obj["status"]
    ns = c.creator_namespace(name)
    assert status["namespace"] == ns
    assert status["tenantId"] == str(c.tenant_id(name))
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    for type_ in ("NamespaceReady", "DatabaseReady", "CacheReady", "VectorStoreReady"):
        found = condition(obj, type_)
        assert found["status"] == "True", found
        assert found["observedGeneration"] == 1
        assert found["lastTransitionTime"]
    assert "0 foreign rows" in condition(obj, "DatabaseReady")["message"]
    namespace = await client.CoreV1Api(cluster.api).read_namespace(ns)
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.metadata.owner_references[0].uid == obj["metadata"]["uid"]
    for kind, child in SHARED_CHILDREN:
        assert await read(cluster, kind, ns, child) is not None, (kind, child)
    for kind, child in RUNTIME_CHILDREN:
        assert await read(cluster, kind, ns, child) is None, (kind, child)
    # The tenant row and its bound login role.
    await superuser.execute("SET search_path = public")
    row = await superuser.fetchrow(
        "SELECT name, isolation, suspended FROM creators WHERE creator_id = $1", c.tenant_id(name)
    )
    assert tuple(row) == (name, "shared", False)
    assert await role_exists(superuser, c.tenant_db_role(name))
    # Chroma tenant and database.
    async with httpx.AsyncClient(base_url=f"{stack.chroma.url}/api/v2") as http:
        chroma = await http.get(f"/tenants/{c.chroma_tenant(name)}/databases/knowledge")
        assert chroma.status_code == 200
    # Events for each step, and no secret anywhere in status or events.
    reasons = await kube.reasons_eventually(
        name, {"NamespaceReady", "DatabaseReady", "CacheReady", "VectorStoreReady", "Ready"}
    )
    assert "RuntimeReady" not in reasons  # shared: no runtime of its own, no step to report
    events = await kube.events(name)
    password = (await kube.secret_data(ns, c.TENANT_SECRET))["PGPASSWORD"]
    assert password not in str(obj)
    assert all(password not in message for _, _, message in events)
    # The operator's own log: it speaks of this Creator (so it is the log that saw the
    # password go by) and never prints the password.
    assert operator.current is not None
    log = operator.current.log()
    assert f"creator {name} reconciled" in log
    assert password not in log
    # `kubectl get coachops` lists it with the printer columns.
    listed = cluster.kubectl("get", "creators", name).stdout
    assert "True" in listed
    assert "shared" in listed
    assert ns in listed


async def test_plan_change_updates_the_quota_in_place(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
) -> None:
    name = new_creator_name("plan")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name)
    ns = c.creator_namespace(name)
    before = await read(cluster, "ResourceQuota", ns, "coachops-plan")
    await kube.patch_creator(name, {"plan": {"name": "pro", "cpu": "8", "maxPrograms": 20}})

    async def updated() -> Any:
        quota = await read(cluster, "ResourceQuota", ns, "coachops-plan")
        return quota if quota.spec.hard["limits.cpu"] == "8" else None

    quota = await eventually(updated, 20)
    assert quota.metadata.uid == before.metadata.uid  # in place, not recreated
    assert quota.spec.hard["count/coachingprograms.coachops.dev"] == "20"

    async def observed() -> Any:
        obj = await kube.creator(name)
        return obj if obj and obj["status"].get("observedGeneration") == 2 else None

    obj = await eventually(observed, 20)
    assert condition(obj, "Ready")["status"] == "True"
    plan = await superuser.fetchval(
        "SELECT plan->>'name' FROM creators WHERE creator_id = $1", c.tenant_id(name)
    )
    assert plan == "pro"
    assert "pro" in cluster.kubectl("get", "creators", name).stdout


LEGACY_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: coachops-program-writer, namespace: {ns}}}
rules: [{{apiGroups: [coachops.dev], resources: [coachingprograms], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: coachops-program-writer
  namespace: {ns}
  labels: {{app.kubernetes.io/managed-by: coachops-operator, coachops.dev/creator: {name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: coachops-program-writer}}
subjects: [{{kind: ServiceAccount, name: coachops-runtime, namespace: coachops-system}}]
"""


async def test_namespaced_roles_of_earlier_versions_are_removed(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    """Tenants bind the shared ClusterRoles now; a Role and binding of an earlier version
    go at the next reconcile."""
    name = new_creator_name("legacy")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name)
    ns = c.creator_namespace(name)
    cluster.kubectl("apply", "-f", "-", input=LEGACY_RBAC.format(ns=ns, name=name))
    await kube.patch_creator(name, {"displayName": "Legacy, upgraded"})

    async def removed() -> bool:
        found = cluster.kubectl(
            "get", "roles,rolebindings", "-n", ns, "-o", "name", check=False
        ).stdout.split()
        return found == [
            "rolebinding.rbac.authorization.k8s.io/coachops-runtime-programs",
            "rolebinding.rbac.authorization.k8s.io/coachops-tenant-runtime",
        ]

    await eventually(removed, 30)
    roles = cluster.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    assert "clusterrole.rbac.authorization.k8s.io/coachops-tenant-runtime" in roles
    assert "clusterrole.rbac.authorization.k8s.io/coachops-runtime-programs" in roles


async def test_dedicated_creator_gets_a_runtime_and_suspends_and_resumes(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
    stack: Stack,
) -> None:
    name = new_creator_name("ded")
    creators.append(name)
    await kube.create_creator(name, isolation="dedicated", runtime={"replicas": 2})
    ns = c.creator_namespace(name)

    async def provisioned() -> Any:
        obj = await kube.creator(name)
        parts = ("NamespaceReady", "DatabaseReady", "CacheReady", "VectorStoreReady")
        return obj if all(condition(obj, t).get("status") == "True" for t in parts) else None

    obj = await eventually(provisioned, 30)
    # No kubelet runs here: the runtime truthfully has no available replicas.
    runtime = condition(obj, "RuntimeReady")
    assert (runtime["status"], runtime["reason"]) == ("False", "ReplicasUnavailable")
    assert condition(obj, "Ready")["status"] == "False"
    for kind, child in [*SHARED_CHILDREN, *RUNTIME_CHILDREN]:
        assert await read(cluster, kind, ns, child) is not None, (kind, child)
    deployment = await read(cluster, "Deployment", ns, c.RUNTIME_NAME)
    assert deployment.spec.replicas == 2
    # Pod Security "restricted" admits the runtime's pods: the ReplicaSet created them.
    pods = await eventually(lambda: _pods(cluster, ns), 30)
    assert len(pods) == 2
    # The Redis user is limited to the tenant's prefix.
    secret = await kube.secret_data(ns, c.TENANT_SECRET)
    tenant_redis = aioredis.Redis.from_url(
        f"redis://{secret['REDIS_USERNAME']}:{secret['REDIS_PASSWORD']}@127.0.0.1:{stack.redis.port}/0"
    )
    try:
        await tenant_redis.set(f"{secret['REDIS_KEY_PREFIX']}k", "v")
        with pytest.raises(NoPermissionError):
            await tenant_redis.get("coachops:t:other:k")
    finally:
        await tenant_redis.aclose()

    # Suspend: runtime to zero, the tenant marked suspended in the database.
    await kube.patch_creator(name, {"suspended": True})

    async def suspended() -> Any:
        d = await read(cluster, "Deployment", ns, c.RUNTIME_NAME)
        db = await superuser.fetchval(
            "SELECT suspended FROM creators WHERE creator_id = $1", c.tenant_id(name)
        )
        return d.spec.replicas == 0 and db is True

    await eventually(suspended, 20)
    obj = await eventually(lambda: _reason_is(kube, name, "Suspended"), 20)
    assert condition(obj, "Ready")["status"] == "False"

    await kube.patch_creator(name, {"suspended": False})

    async def resumed() -> Any:
        d = await read(cluster, "Deployment", ns, c.RUNTIME_NAME)
        db = await superuser.fetchval(
            "SELECT suspended FROM creators WHERE creator_id = $1", c.tenant_id(name)
        )
        return d.spec.replicas == 2 and db is False

    await eventually(resumed, 20)


async def _pods(cluster: Cluster, namespace: str) -> list[Any]:
    pods = await client.CoreV1Api(cluster.api).list_namespaced_pod(namespace)
    return list(pods.items)


async def _reason_is(kube: Kube, name: str, reason: str) -> Any:
    obj = await kube.creator(name)
    return obj if condition(obj, "Ready").get("reason") == reason else None


# ---------------------------------------------------------------- programs


async def test_program_is_copied_to_the_database_and_kept_in_sync(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
) -> None:
    name = new_creator_name("prog")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name)
    await kube.create_program(name, "habits", persona={"name": "Robin", "tone": "direct"})

    async def program_ready() -> Any:
        obj = await kube.program(name, "habits")
        return obj if condition(obj, "Ready").get("status") == "True" else None

    obj = await eventually(program_ready, 20)
    assert condition(obj, "Ready")["reason"] == "Reconciled"
    assert condition(obj, "Synced")["reason"] == "Synced"
    assert condition(obj, "ModelReady")["reason"] == "Ready"
    program_id = c.program_id(name, "habits")
    assert obj["status"]["programId"] == str(program_id)
    row = await superuser.fetchrow(
        "SELECT creator_id, title, spec->'persona'->>'tone' AS tone, generation FROM programs"
        " WHERE program_id = $1",
        program_id,
    )
    assert row["creator_id"] == c.tenant_id(name)
    assert row["tone"] == "direct"
    # An update is copied too.
    await kube.patch_program(name, "habits", {"persona": {"name": "Robin", "tone": "playful"}})

    async def synced() -> Any:
        return await superuser.fetchval(
            "SELECT spec->'persona'->>'tone' = 'playful' FROM programs WHERE program_id = $1",
            program_id,
        )

    await eventually(synced, 20)
    # The creator counts its programs.
    await eventually(lambda: _program_count(kube, name, 1), 20)


async def _program_count(kube: Kube, name: str, count: int) -> bool:
    obj = await kube.creator(name)
    return bool(obj and obj["status"].get("programs") == count)


async def test_program_waits_for_its_creator(
    operator: Operator,
    kube: Kube,
    cluster: Cluster,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("wait")
    creators.append(name)
    # A suspended creator is never Ready; its program says why.
    await kube.create_creator(name, suspended=True)
    await eventually(lambda: _reason_is(kube, name, "Suspended"), 30)
    await kube.create_program(name, "early")

    async def waiting() -> Any:
        obj = await kube.program(name, "early")
        return obj if condition(obj, "Ready").get("reason") == "CreatorNotReady" else None

    await eventually(waiting, 20)
    await kube.patch_creator(name, {"suspended": False})

    async def program_ready() -> Any:
        obj = await kube.program(name, "early")
        return obj if condition(obj, "Ready").get("status") == "True" else None

    await eventually(program_ready, 30)


# ---------------------------------------------------------------- deletion


async def _gone(check: Any) -> bool:
    return not await check()


async def test_delete_with_reclaim_delete_leaves_nothing(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
    stack: Stack,
) -> None:
    name = new_creator_name("del")
    await kube.create_creator(name, isolation="dedicated", reclaimPolicy="Delete")
    ns = c.creator_namespace(name)
    await eventually(lambda: _condition_true(kube, name, "DatabaseReady"), 30)
    await eventually(lambda: _condition_true(kube, name, "CacheReady"), 30)
    await kube.create_program(name, "doomed")
    await eventually(lambda: _program_row(superuser, name, "doomed"), 30)
    prefix = c.tenant_redis_prefix(name)
    admin = aioredis.Redis.from_url(stack.redis.url)
    chroma = httpx.AsyncClient(base_url=f"{stack.chroma.url}/api/v2")
    try:
        await admin.set(f"{prefix}quota:x", "1")
        tenant, db = c.chroma_tenant(name), c.CHROMA_DATABASE
        made = await chroma.post(
            f"/tenants/{tenant}/databases/{db}/collections", json={"name": "kb-doomed"}
        )
        assert made.status_code == 200, made.text

        await kube.delete_creator(name)
        await eventually(lambda: _gone(lambda: kube.creator(name)), 60)
        assert await kube.program(name, "doomed") is None
        assert not await role_exists(superuser, c.tenant_db_role(name))
        for table in ("creators", "programs"):
            left = await superuser.fetchval(
                f"SELECT count(*) FROM {table} WHERE creator_id = $1", c.tenant_id(name)
            )
            assert left == 0, table
        assert [k async for k in admin.scan_iter(match=f"{prefix}*")] == []
        assert not await acl(admin, "ACL", "GETUSER", c.tenant_redis_user(name))
        found = await chroma.get(f"/tenants/{tenant}/databases/{db}")
        assert found.status_code == 404
        await eventually(lambda: _namespace_gone(cluster, ns), 60)
        await kube.reasons_eventually(name, {"TenantDataDeleted"})
    finally:
        await admin.aclose()
        await chroma.aclose()


async def test_delete_with_reclaim_retain_keeps_the_data_and_says_so(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
    stack: Stack,
) -> None:
    name = new_creator_name("keep")
    await kube.create_creator(name)
    await wait_ready(kube, name)
    await kube.create_program(name, "kept")
    await eventually(lambda: _program_row(superuser, name, "kept"), 30)
    await kube.delete_creator(name)
    await eventually(lambda: _gone(lambda: kube.creator(name)), 60)
    row = await superuser.fetchrow(
        "SELECT suspended FROM creators WHERE creator_id = $1", c.tenant_id(name)
    )
    assert row is not None
    assert row["suspended"] is True
    deleted_at = await superuser.fetchval(
        "SELECT deleted_at FROM programs WHERE program_id = $1", c.program_id(name, "kept")
    )
    assert deleted_at is not None
    login = await superuser.fetchval(
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", c.tenant_db_role(name)
    )
    assert login is False
    async with httpx.AsyncClient(base_url=f"{stack.chroma.url}/api/v2") as http:
        found = await http.get(f"/tenants/{c.chroma_tenant(name)}/databases/knowledge")
        assert found.status_code == 200
    messages = await kube.messages_eventually(name, "TenantDataRetained")
    assert "kept the rows" in messages[0]
    await eventually(lambda: _namespace_gone(cluster, c.creator_namespace(name)), 60)


async def _condition_true(kube: Kube, name: str, type_: str) -> bool:
    return condition(await kube.creator(name), type_).get("status") == "True"


async def _program_row(conn: asyncpg.Connection, creator: str, program: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM programs WHERE program_id = $1", c.program_id(creator, program)
        )
    )


async def _namespace_gone(cluster: Cluster, name: str) -> bool:
    try:
        await client.CoreV1Api(cluster.api).read_namespace(name)
    except ApiException as error:
        return error.status == 404
    return False


# ---------------------------------------------------------------- drift


async def test_drift_in_every_kind_of_child_is_repaired_within_30_s(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    superuser: asyncpg.Connection,
    stack: Stack,
) -> None:
    name = new_creator_name("drift")
    creators.append(name)
    await kube.create_creator(name, isolation="dedicated")
    ns = c.creator_namespace(name)
    await eventually(lambda: _condition_true(kube, name, "CacheReady"), 30)
    await eventually(lambda: _condition_true(kube, name, "DatabaseReady"), 30)
    uids = {}
    for kind, child in [*SHARED_CHILDREN, *RUNTIME_CHILDREN]:
        uids[(kind, child)] = (await read(cluster, kind, ns, child)).metadata.uid
    # Delete every child, edit the quota and the namespace, drop the role, the Redis user
    # and alter the RLS policy.
    for kind, child in [*SHARED_CHILDREN, *RUNTIME_CHILDREN]:
        if (kind, child) != ("ResourceQuota", "coachops-plan"):
            await delete(cluster, kind, ns, child)
    await client.CoreV1Api(cluster.api).patch_namespaced_resource_quota(
        "coachops-plan",
        ns,
        {"spec": {"hard": {"limits.cpu": "100"}}},
        _content_type="application/merge-patch+json",  # type: ignore[call-arg]
    )
    await client.CoreV1Api(cluster.api).patch_namespace(
        ns,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
        _content_type="application/merge-patch+json",  # type: ignore[call-arg]
    )
    await superuser.execute(f"DROP ROLE {c.tenant_db_role(name)}")
    await superuser.execute("ALTER POLICY tenant_context ON programs USING (true)")
    admin = aioredis.Redis.from_url(stack.redis.url)
    try:
        await acl(admin, "ACL", "DELUSER", c.tenant_redis_user(name))
        started = asyncio.get_running_loop().time()

        async def repaired() -> list[str]:
            problems = []
            for kind, child in [*SHARED_CHILDREN, *RUNTIME_CHILDREN]:
                live = await read(cluster, kind, ns, child)
                if live is None:
                    problems.append(f"{kind} {child} missing")
            quota = await read(cluster, "ResourceQuota", ns, "coachops-plan")
            if quota.spec.hard["limits.cpu"] != "2":
                problems.append("quota still edited")
            namespace = await client.CoreV1Api(cluster.api).read_namespace(ns)
            if namespace.metadata.labels["pod-security.kubernetes.io/enforce"] != "restricted":
                problems.append("namespace label still edited")
            if not await role_exists(superuser, c.tenant_db_role(name)):
                problems.append("role missing")
            qual = await superuser.fetchval(
                "SELECT qual FROM pg_policies"
                " WHERE tablename = 'programs' AND policyname = 'tenant_context'"
            )
            if qual != rls.POLICIES[0].canonical:
                problems.append("policy still altered")
            if not await acl(admin, "ACL", "GETUSER", c.tenant_redis_user(name)):
                problems.append("redis user missing")
            return problems

        async def none_left() -> bool:
            return not await repaired()

        try:
            await eventually(none_left, 30, interval=1)
        except AssertionError:
            raise AssertionError(f"not repaired in 30 s: {await repaired()}") from None
        elapsed = asyncio.get_running_loop().time() - started
        print(f"drift repaired in {elapsed:.1f} s")
    finally:
        await admin.aclose()
    # The repaired role works: the probe says so again.
    await eventually(lambda: _condition_true(kube, name, "DatabaseReady"), 30)
    await kube.reasons_eventually(name, {"DriftDetected"})


async def test_a_deleted_namespace_comes_back(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("nsdrift")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name)
    ns = c.creator_namespace(name)
    old = await client.CoreV1Api(cluster.api).read_namespace(ns)
    await client.CoreV1Api(cluster.api).delete_namespace(ns)

    async def recreated() -> bool:
        try:
            live = await client.CoreV1Api(cluster.api).read_namespace(ns)
        except ApiException:
            return False
        if live.metadata.uid == old.metadata.uid:
            return False
        return await read(cluster, "Secret", ns, c.TENANT_SECRET) is not None

    await eventually(recreated, 45, interval=1)
    await wait_ready(kube, name, timeout=30)


# ---------------------------------------------------------------- isolation


async def test_tenant_role_running_arbitrary_sql_cannot_reach_another_tenant(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
    stack: Stack,
) -> None:
    a, b = new_creator_name("sqla"), new_creator_name("sqlb")
    creators.extend([a, b])
    await kube.create_creator(a)
    await kube.create_creator(b)
    await wait_ready(kube, a)
    await wait_ready(kube, b)
    await kube.create_program(b, "secret-sauce")

    async def b_program_ready() -> bool:
        return condition(await kube.program(b, "secret-sauce"), "Ready").get("status") == "True"

    await eventually(b_program_ready, 30)
    creds = await kube.secret_data(c.creator_namespace(a), c.TENANT_SECRET)
    conn = await asyncpg.connect(creds["DATABASE_URL"])
    b_id = c.tenant_id(b)
    try:
        assert await conn.fetchval("SELECT current_tenant_id()") == c.tenant_id(a)
        # Try to name another tenant every way a session can.
        await conn.execute(f"SET coachops.tenant_id = '{b_id}'")
        await conn.execute("SELECT set_config('coachops.tenant_id', $1, false)", str(b_id))
        assert await conn.fetchval("SELECT count(*) FROM creators WHERE creator_id = $1", b_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM programs WHERE creator_id = $1", b_id) == 0
        assert {r[0] for r in await conn.fetch("SELECT creator_id FROM creators")} == {
            c.tenant_id(a)
        }
        # Shadow the role bindings with temporary tables (SECURITY DEFINER search_path trick).
        await conn.execute("CREATE TEMP TABLE tenant_context_roles (role_name name)")
        await conn.execute("INSERT INTO tenant_context_roles VALUES (current_user)")
        await conn.execute("CREATE TEMP TABLE tenant_db_roles (role_name name, creator_id uuid)")
        await conn.execute("INSERT INTO tenant_db_roles VALUES (current_user, $1)", b_id)
        assert await conn.fetchval("SELECT current_tenant_id()") == c.tenant_id(a)
        assert await conn.fetchval("SELECT count(*) FROM programs WHERE creator_id = $1", b_id) == 0
        # The group role grants nothing more.
        await conn.execute("SET ROLE coachops_tenants")
        assert await conn.fetchval("SELECT count(*) FROM programs WHERE creator_id = $1", b_id) == 0
        await conn.execute("RESET ROLE")
        # ... and the group whose policy trusts the tenant setting is out of reach.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"SET ROLE {rls.CONTEXT_GROUP}")
        # Writes to another tenant and to the bindings are refused.
        refused = [
            ("UPDATE programs SET title = 'pwned' WHERE creator_id = $1", (b_id,)),
            ("DELETE FROM programs WHERE creator_id = $1", (b_id,)),
            (
                "INSERT INTO programs (program_id, creator_id, name, title, spec)"
                " VALUES ($1, $2, 'x', 'x', '{}')",
                (uuid.uuid4(), b_id),
            ),
            ("UPDATE public.tenant_db_roles SET creator_id = $1", (b_id,)),
            ("SELECT * FROM public.tenant_db_roles WHERE creator_id = $1", (b_id,)),
            ("ALTER TABLE programs DISABLE ROW LEVEL SECURITY", ()),
            ("DROP POLICY tenant_binding ON programs", ()),
            ("DROP POLICY tenant_context ON programs", ()),
            (f"GRANT {rls.CONTEXT_GROUP} TO current_user", ()),
            ("CREATE TABLE public.leak (x int)", ()),
        ]
        for statement, args in refused:
            try:
                result = await conn.execute(statement, *args)
            except asyncpg.PostgresError:
                continue
            assert result.endswith(" 0"), (statement, result)
    finally:
        await conn.close()
    title = await asyncpg.connect(stack.postgres.superuser_dsn)
    try:
        assert (
            await title.fetchval(
                "SELECT title FROM programs WHERE program_id = $1",
                c.program_id(b, "secret-sauce"),
            )
            != "pwned"
        )
    finally:
        await title.close()


async def test_tenant_service_account_cannot_read_other_namespaces_secrets(
    operator: Operator,
    cluster: Cluster,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    a, b = new_creator_name("saa"), new_creator_name("sab")
    creators.extend([a, b])
    await kube.create_creator(a)
    await kube.create_creator(b)
    await wait_ready(kube, a)
    await wait_ready(kube, b)
    kubeconfig = await cluster.service_account_kubeconfig(
        c.creator_namespace(a), c.TENANT_SERVICE_ACCOUNT
    )
    other = cluster.kubectl(
        "get", "secrets", "-n", c.creator_namespace(b), kubeconfig=kubeconfig, check=False
    )
    assert other.returncode != 0
    assert "Forbidden" in other.stderr
    system = cluster.kubectl(
        "get", "secrets", "-n", "kube-system", kubeconfig=kubeconfig, check=False
    )
    assert system.returncode != 0
    assert "Forbidden" in system.stderr
    own = cluster.kubectl(
        "auth",
        "can-i",
        "create",
        "coachingprograms",
        "-n",
        c.creator_namespace(a),
        kubeconfig=kubeconfig,
        check=False,
    )
    assert own.stdout.strip() == "yes"
    cross = cluster.kubectl(
        "auth",
        "can-i",
        "create",
        "coachingprograms",
        "-n",
        c.creator_namespace(b),
        kubeconfig=kubeconfig,
        check=False,
    )
    assert cross.stdout.strip() == "no"


# ---------------------------------------------------------------- operations


async def test_metrics_and_liveness(
    operator: Operator, kube: Kube, creators: list[str], new_creator_name: Callable[[str], str]
) -> None:
    name = new_creator_name("metrics")
    creators.append(name)
    await kube.create_creator(name)
    await wait_ready(kube, name)
    assert operator.current is not None
    assert await operator.current.role() == "leader"
    text = await operator.current.metrics()
    assert 'coachops_operator_reconciles_total{kind="Creator",result="ok"}' in text
    assert "coachops_operator_reconcile_duration_seconds_bucket" in text
    assert 'coachops_operator_conditions{kind="Creator",status="True",type="Ready"}' in text
    assert "coachops_operator_leader 1.0" in text


async def test_impossible_spec_is_a_permanent_error_with_a_readable_event(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("impossible")
    creators.append(name)
    # Valid field by field, impossible together: 3 pods x 1 CPU under a 1 CPU quota.
    await kube.create_creator(
        name, isolation="dedicated", plan={"cpu": "1"}, runtime={"replicas": 3, "maxReplicas": 3}
    )

    async def rejected() -> Any:
        obj = await kube.creator(name)
        return obj if condition(obj, "Ready").get("reason") == "InvalidSpec" else None

    obj = await eventually(rejected, 30)
    assert "exceeds plan.cpu" in condition(obj, "Ready")["message"]
    warnings = await kube.messages_eventually(name, "InvalidSpec")
    assert "raise plan.cpu" in warnings[0]
    # Fixing the spec makes it converge.
    await kube.patch_creator(name, {"plan": {"cpu": "4"}})

    async def provisioned() -> bool:
        return condition(await kube.creator(name), "DatabaseReady").get("status") == "True"

    await eventually(provisioned, 30)
