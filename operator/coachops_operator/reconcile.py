"""Creator reconciliation: the steps, each store behind its own condition.

``reconcile_creator`` is what ``creator.reconcile`` runs on create, update, resume and
drift.
Every step is idempotent (server-side apply, upserts, deterministic names), so running it
again after a crash converges without duplicates. A store that is down turns its
condition False with a reason and asks for a retry; the other steps still run.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_operator import builders, kinds, kube
from coachops_operator import conditions as cond
from coachops_operator.builders import CreatorRef
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.database import TenantRow, probe_isolation
from coachops_operator.errors import describe
from coachops_operator.metrics import STEP_SECONDS
from coachops_operator.redis_users import STORE_ERRORS as REDIS_ERRORS
from coachops_operator.redis_users import probe_user
from coachops_operator.retry import Retry, RetryKind
from coachops_operator.stores import Stores
from coachops_operator.validation import first_problem
from coachops_operator.vectors import STORE_ERRORS as CHROMA_ERRORS
from coachops_operator.vectors import VectorStoreError

log = logging.getLogger("coachops_operator")

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass
class Outcome:
    """What one reconcile observed: the status to write, events to post, what to retry."""

    status: dict[str, Any]
    events: list[Event]
    retry: list[Retry] = field(default_factory=list)
    permanent: str | None = None


class InvalidSpecError(Exception):
    pass


def parse_spec(spec: Mapping[str, Any]) -> CreatorSpec:
    try:
        return CreatorSpec.model_validate(dict(spec))
    except ValidationError as error:
        raise InvalidSpecError(first_problem(error, "spec.")) from error


def static_status(name: str, spec: CreatorSpec) -> dict[str, Any]:
    dedicated = spec.isolation == "dedicated"
    return {
        "namespace": c.creator_namespace(name),
        "tenantId": str(c.tenant_id(name)),
        "database": {"role": c.tenant_db_role(name), "secretName": c.TENANT_SECRET},
        "cache": {
            "keyPrefix": c.tenant_redis_prefix(name),
            "user": c.tenant_redis_user(name) if dedicated else "",
        },
        "vectorStore": {"tenant": c.chroma_tenant(name), "database": c.CHROMA_DATABASE},
        "suspended": spec.suspended,
    }


# ---------------------------------------------------------------- credentials


def _decode(data: Mapping[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


async def ensure_credentials(stores: Stores, ref: CreatorRef, spec: CreatorSpec) -> dict[str, str]:
    """The tenant's credentials Secret (created or completed); returns its plain data."""
    live = await kube.get(stores.api, "v1", "Secret", ref.namespace, c.TENANT_SECRET)
    current = _decode(live.get("data") if live else None)
    role = c.tenant_db_role(ref.name)
    pg_password = current.get("PGPASSWORD") or secrets.token_urlsafe(24)
    host, port, database = stores.pg_endpoint()
    data = {
        "PGHOST": host,
        "PGPORT": str(port),
        "PGDATABASE": database,
        "PGUSER": role,
        "PGPASSWORD": pg_password,
        "DATABASE_URL": builders.database_url(role, pg_password, host, port, database),
    }
    if spec.isolation == "dedicated":
        user = c.tenant_redis_user(ref.name)
        redis_password = current.get("REDIS_PASSWORD") or secrets.token_urlsafe(24)
        redis_host, redis_port = stores.redis_endpoint()
        data |= {
            "REDIS_USERNAME": user,
            "REDIS_PASSWORD": redis_password,
            "REDIS_KEY_PREFIX": c.tenant_redis_prefix(ref.name),
            "REDIS_URL": builders.redis_url(user, redis_password, redis_host, redis_port),
        }
    if current != data or live is None:
        await kube.apply(stores.api, builders.credentials_secret(ref, data))
    return data


# ---------------------------------------------------------------- steps


Lookup = Callable[[str, str], Mapping[str, Any] | None]
# Reasons that mean "waiting for another controller": polled, not backed off.
QUOTA_PENDING = "QuotaPending"


async def step_namespace(
    stores: Stores, ref: CreatorRef, spec: CreatorSpec, lookup: Lookup
) -> Observation:
    applied = await kube.apply(stores.api, builders.namespace(ref))
    if applied.get("status", {}).get("phase") == "Terminating":
        return Observation.false(
            cond.NAMESPACE_READY,
            "NamespaceTerminating",
            f"namespace {ref.namespace} is still being deleted; it will be recreated",
        )
    await asyncio.gather(
        *(kube.apply(stores.api, m) for m in builders.namespaced_children(ref, spec))
    )
    for legacy in builders.LEGACY_ROLES:  # replaced by bindings to the shared ClusterRoles
        if lookup("RoleBinding", legacy) is not None:
            await kube.delete(stores.api, kinds.RBAC, "RoleBinding", ref.namespace, legacy)
            await kube.delete(stores.api, kinds.RBAC, "Role", ref.namespace, legacy)
    return Observation.true(
        cond.NAMESPACE_READY,
        "Applied",
        f"namespace {ref.namespace} with RBAC, quota, limits and network policy",
    )


def _counted(quota: Mapping[str, Any] | None, want: Mapping[str, str]) -> bool:
    status = (quota or {}).get("status") or {}
    hard = {k: str(v) for k, v in (status.get("hard") or {}).items()}
    return hard == dict(want) and set(want) <= set(status.get("used") or {})


async def step_quota(
    stores: Stores, ref: CreatorRef, spec: CreatorSpec, lookup: Lookup, wait: float = 2.0
) -> Observation:
    """NamespaceReady waits for the quota controller to count the plan's ResourceQuota:
    until it has, the apiserver refuses every object the quota counts ("status unknown
    for quota"), so the namespace is not ready for programs. Polls the watch-fed index,
    not the API."""
    desired = builders.resource_quota(ref, spec)
    want = desired["spec"]["hard"]
    name = desired["metadata"]["name"]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _counted(lookup("ResourceQuota", name), want):
            return Observation.true(
                cond.NAMESPACE_READY,
                "Applied",
                f"namespace {ref.namespace} with RBAC, quota, limits and network policy",
            )
        await asyncio.sleep(0.2)
    live = await kube.get(stores.api, "v1", "ResourceQuota", ref.namespace, name)
    if _counted(live, want):
        return Observation.true(cond.NAMESPACE_READY, "Applied", f"namespace {ref.namespace}")
    status = (live or {}).get("status") or {}
    created = str((live or {}).get("metadata", {}).get("creationTimestamp", ""))
    stuck = bool(created) and _age_seconds(created) > 60
    if stuck and {k: str(v) for k, v in (status.get("hard") or {}).items()} == want:
        # Seen long ago but never counted: the controller learns about new CRDs every 30 s
        # and then only recounts quotas every 5 min. Recreate the quota to have it counted.
        await kube.delete(stores.api, "v1", "ResourceQuota", ref.namespace, name)
    return Observation.false(
        cond.NAMESPACE_READY,
        QUOTA_PENDING,
        "the quota controller has not counted the plan's ResourceQuota yet",
    )


def _age_seconds(timestamp: str) -> float:
    from datetime import UTC, datetime

    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - then).total_seconds()


async def step_database(
    stores: Stores, ref: CreatorRef, spec: CreatorSpec, generation: int, password: str
) -> Observation:
    tenant = c.tenant_id(ref.name)
    role = c.tenant_db_role(ref.name)
    if not stores.canary_ready:
        await stores.db.ensure_canary()
        stores.canary_ready = True
    await stores.db.provision(
        TenantRow(
            tenant,
            ref.name,
            spec.display_name,
            spec.contact.email,
            spec.plan.model_dump(by_alias=True),
            spec.isolation,
            spec.suspended,
            generation,
        ),
        role,
        password,
    )
    dsn = stores.pg_probe_dsn(role, password)
    timeout = stores.settings.store_timeout
    try:
        result = await probe_isolation(dsn, tenant, connect_timeout=timeout)
    except PG_ERRORS as error:
        if getattr(error, "sqlstate", "") != "28P01":  # invalid_password
            raise
        # The Secret and the role disagree (restored Secret, edited role): reset the role.
        await stores.db.set_password(role, password)
        result = await probe_isolation(dsn, tenant, connect_timeout=timeout)
    if not result.ok:
        return Observation.false(cond.DATABASE_READY, "IsolationProbeFailed", result.message)
    return Observation.true(
        cond.DATABASE_READY, "IsolationVerified", f"role {role}: {result.message}"
    )


async def step_cache(
    stores: Stores, ref: CreatorRef, spec: CreatorSpec, credentials: Mapping[str, str]
) -> Observation:
    prefix = c.tenant_redis_prefix(ref.name)
    if spec.isolation != "dedicated":
        await stores.redis.ping()
        return Observation.true(
            cond.CACHE_READY, "SharedPrefix", f"shared runtime keys under {prefix}"
        )
    user = c.tenant_redis_user(ref.name)
    password = credentials["REDIS_PASSWORD"]
    await stores.redis.ensure_user(user, prefix, password)
    problem = await probe_user(stores.redis_probe_url(user, password), prefix)
    if problem:
        return Observation.false(cond.CACHE_READY, "IsolationProbeFailed", problem)
    return Observation.true(
        cond.CACHE_READY, "AclUserVerified", f"user {user} limited to keys under {prefix}"
    )


async def step_vectors(stores: Stores, ref: CreatorRef) -> Observation:
    tenant = c.chroma_tenant(ref.name)
    await stores.vectors.ensure(tenant, c.CHROMA_DATABASE)
    return Observation.true(
        cond.VECTOR_STORE_READY,
        "Provisioned",
        f"Chroma tenant {tenant}, database {c.CHROMA_DATABASE}",
    )


def runtime_observation(spec: CreatorSpec, deployment: Mapping[str, Any] | None) -> Observation:
    """RuntimeReady from the Deployment's own status: the truth, not the intent."""
    if spec.isolation != "dedicated":
        return Observation.true(cond.RUNTIME_READY, "SharedRuntime", "served by the shared runtime")
    if deployment is None:
        return Observation.false(cond.RUNTIME_READY, "DeploymentMissing", "not applied yet")
    want = int(deployment.get("spec", {}).get("replicas") or 0)
    status = deployment.get("status") or {}
    available = int(status.get("availableReplicas") or 0)
    if spec.suspended:
        if available == 0:
            return Observation.true(cond.RUNTIME_READY, "ScaledToZero", "suspended: 0 replicas")
        return Observation.false(
            cond.RUNTIME_READY, "ScalingToZero", f"suspended: {available} replica(s) left"
        )
    if available >= 1:
        return Observation.true(
            cond.RUNTIME_READY, "Available", f"{available}/{want} replicas available"
        )
    return Observation.false(
        cond.RUNTIME_READY, "ReplicasUnavailable", f"{available}/{want} replicas available"
    )


async def step_runtime(
    stores: Stores,
    ref: CreatorRef,
    spec: CreatorSpec,
    present: Callable[[str, str], bool],
) -> Observation:
    if spec.isolation == "dedicated":
        applied = await asyncio.gather(
            *(
                kube.apply(stores.api, m)
                for m in builders.runtime_objects(ref, spec, stores.runtime_env)
            )
        )
        return runtime_observation(spec, applied[0])
    # Shared: remove what a former dedicated runtime left behind.
    for runtime_kind in kinds.RUNTIME_KINDS:
        if present(runtime_kind.kind, c.RUNTIME_NAME):
            await kube.delete(
                stores.api,
                runtime_kind.api_version,
                runtime_kind.kind,
                ref.namespace,
                c.RUNTIME_NAME,
            )
    return runtime_observation(spec, None)


# ---------------------------------------------------------------- the whole reconcile


StepFn = Callable[[], Awaitable[Observation]]


async def _guarded(
    type_: str, unavailable: str, errors: tuple[type[BaseException], ...], step: StepFn
) -> tuple[Observation, str | None]:
    started = time.monotonic()
    try:
        return await step(), None
    except errors as error:
        detail = describe(error)
        return Observation.false(type_, unavailable, f"{unavailable}: {detail}"), detail
    finally:
        STEP_SECONDS.labels(type_).observe(time.monotonic() - started)


async def reconcile_creator(
    stores: Stores,
    *,
    name: str,
    uid: str,
    spec_raw: Mapping[str, Any],
    generation: int,
    old_status: Mapping[str, Any],
    lookup: Lookup = lambda kind, name: None,
) -> Outcome:
    ref = CreatorRef(name, uid)
    old_conditions = old_status.get("conditions") or []
    try:
        spec = parse_spec(spec_raw)
        builders.check_feasible(spec)
    except (InvalidSpecError, builders.ImpossibleSpecError) as error:
        observation = Observation.false(cond.READY, "InvalidSpec", str(error))
        return Outcome(
            {"conditions": cond.merge(old_conditions, [observation], generation)},
            [("Warning", "InvalidSpec", str(error))],
            permanent=str(error),
        )

    status = static_status(name, spec)
    observations: list[Observation] = []
    retry: list[Retry] = []

    namespace_obs, failed = await _guarded(
        cond.NAMESPACE_READY,
        "KubernetesApiError",
        kube.KUBE_ERRORS,
        lambda: step_namespace(stores, ref, spec, lookup),
    )
    observations.append(namespace_obs)
    credentials: dict[str, str] | None = None
    if namespace_obs.status == "True":
        try:
            credentials = await ensure_credentials(stores, ref, spec)
        except kube.KUBE_ERRORS as error:
            failed = describe(error)
    if failed or namespace_obs.status != "True":
        retry.append(Retry(f"namespace: {namespace_obs.reason}"))

    if credentials is None:
        waiting = "waiting for the tenant namespace and its credentials Secret"
        observations += [
            Observation.false(cond.DATABASE_READY, "NamespaceNotReady", waiting),
            Observation.false(cond.CACHE_READY, "NamespaceNotReady", waiting),
        ]
        vector_obs, failed = await _guarded(
            cond.VECTOR_STORE_READY,
            "VectorStoreUnavailable",
            (*CHROMA_ERRORS, VectorStoreError),
            lambda: step_vectors(stores, ref),
        )
        observations.append(vector_obs)
        observations.append(
            Observation.false(cond.RUNTIME_READY, "NamespaceNotReady", waiting)
            if spec.isolation == "dedicated"
            else runtime_observation(spec, None)
        )
    else:
        creds = credentials
        results = await asyncio.gather(
            _guarded(
                cond.NAMESPACE_READY,
                "KubernetesApiError",
                kube.KUBE_ERRORS,
                lambda: step_quota(stores, ref, spec, lookup),
            ),
            _guarded(
                cond.DATABASE_READY,
                "DatabaseUnavailable",
                PG_ERRORS,
                lambda: step_database(stores, ref, spec, generation, creds["PGPASSWORD"]),
            ),
            _guarded(
                cond.CACHE_READY,
                "CacheUnavailable",
                REDIS_ERRORS,
                lambda: step_cache(stores, ref, spec, creds),
            ),
            _guarded(
                cond.VECTOR_STORE_READY,
                "VectorStoreUnavailable",
                (*CHROMA_ERRORS, VectorStoreError),
                lambda: step_vectors(stores, ref),
            ),
            _guarded(
                cond.RUNTIME_READY,
                "KubernetesApiError",
                kube.KUBE_ERRORS,
                lambda: step_runtime(
                    stores, ref, spec, lambda kind, child: lookup(kind, child) is not None
                ),
            ),
        )
        observations.remove(namespace_obs)  # the quota step has the final word
        for observation, step_error in results:
            observations.append(observation)
            reason = f"{observation.type}: {observation.reason}"
            if step_error is not None:
                retry.append(Retry(reason))
            elif observation.reason == QUOTA_PENDING:
                # A quota not counted yet is no error, but nothing else would bring the
                # handler back to see it counted: poll.
                retry.append(Retry(reason, RetryKind.POLL))

    ready = cond.summarize(observations, suspended=spec.suspended)
    merged = cond.merge(old_conditions, [*observations, ready], generation)
    status |= {"conditions": merged, "observedGeneration": generation}
    events = transition_events(old_conditions, [*observations, ready])
    return Outcome(status, events, retry)


_SUCCESS_EVENT = {
    cond.NAMESPACE_READY: "NamespaceReady",
    cond.DATABASE_READY: "DatabaseReady",
    cond.CACHE_READY: "CacheReady",
    cond.VECTOR_STORE_READY: "VectorStoreReady",
    cond.RUNTIME_READY: "RuntimeReady",
    cond.READY: "Ready",
}


def transition_events(
    previous: list[Mapping[str, Any]] | Any, observations: list[Observation]
) -> list[Event]:
    """One Event per condition whose status or reason changed (no repeats on resync)."""
    events: list[Event] = []
    for obs in observations:
        old = cond.get(previous, obs.type)
        if old is not None and old.get("status") == obs.status and old.get("reason") == obs.reason:
            continue
        if obs.status == "True":
            if obs.reason != "SharedRuntime":  # a shared tenant has no runtime step to report
                events.append(("Normal", _SUCCESS_EVENT.get(obs.type, obs.type), obs.message))
        elif obs.type != cond.READY or obs.reason == "Suspended":
            kind = "Normal" if obs.reason in {"Suspended", "SharedRuntime"} else "Warning"
            events.append((kind, obs.reason, f"{obs.type}: {obs.message}"))
    return events
