"""kopf handlers: thin, typed, and nothing but wiring over reconcile.py and the builders.

Importing this module registers the handlers with kopf's default registry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from coachops_crds import constants as c
from coachops_crds.models import CoachingProgramSpec
from coachops_operator import builders, drift, kube, metrics
from coachops_operator import conditions as cond
from coachops_operator.builders import CreatorRef
from coachops_operator.cache import STORE_ERRORS as REDIS_ERRORS
from coachops_operator.cache import Cache, rules_problems
from coachops_operator.children import Children
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.database import Database, describe
from coachops_operator.reconcile import (
    InvalidSpecError,
    Outcome,
    Stores,
    delete_creator_data,
    parse_spec,
    reconcile_creator,
)
from coachops_operator.settings import OperatorSettings
from coachops_operator.vectors import STORE_ERRORS as CHROMA_ERRORS
from coachops_operator.vectors import VectorStore, VectorStoreError

log = logging.getLogger("coachops_operator")

CREATORS = (c.GROUP, c.VERSION, c.CREATOR_PLURAL)
PROGRAMS = (c.GROUP, c.VERSION, c.PROGRAM_PLURAL)
DRIFT_INTERVAL = float(os.environ.get("COACHOPS_OPERATOR_DRIFT_INTERVAL", "10"))

# (apiVersion, plural, kind) of every child the operator writes and watches for drift.
CHILDREN = (
    ("v1", "namespaces", "Namespace"),
    ("v1", "serviceaccounts", "ServiceAccount"),
    ("v1", "secrets", "Secret"),
    ("v1", "services", "Service"),
    ("v1", "resourcequotas", "ResourceQuota"),
    ("v1", "limitranges", "LimitRange"),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    ("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
    ("apps/v1", "deployments", "Deployment"),
    ("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget"),
)
STORE_FAILURES: tuple[type[BaseException], ...] = (
    *PG_ERRORS,
    *REDIS_ERRORS,
    *CHROMA_ERRORS,
    VectorStoreError,
    *kube.KUBE_ERRORS,
)


def _stores(memo: kopf.Memo) -> Stores:
    stores: Stores = memo["stores"]
    return stores


def backoff(retry: int) -> float:
    """Seconds before the next attempt: 1, 2, 4 ... capped at 60."""
    return float(min(60, 2 ** min(retry, 6)))


def _shapes() -> dict[str, dict[str, Any]]:
    """One manifest of each kind the builders make: what Children keeps of live objects."""
    from coachops_crds.models import CreatorSpec

    spec = CreatorSpec.model_validate(
        {"displayName": "x", "contact": {"email": "x@x.x"}, "isolation": "dedicated"}
    )
    ref = CreatorRef("shape", "uid")
    env = builders.RuntimeEnv(image="i", chroma_url="u")
    made = [
        builders.namespace(ref),
        *builders.namespaced_children(ref, spec),
        *builders.runtime_objects(ref, spec, env),
    ]
    shapes = {m["kind"]: m for m in made}
    shapes["Secret"] = builders.credentials_secret(ref, {})
    return shapes


SHAPES = _shapes()


# ---------------------------------------------------------------- startup and cleanup


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = c.FINALIZER
    # kopf's bookkeeping (status.kopf) travels with the status the handlers write: one
    # PATCH per handled change instead of a status PATCH plus an annotations PATCH.
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    settings.posting.level = logging.WARNING
    # The apiserver is reached directly; with trust_env aiohttp re-reads ~/.netrc and the
    # proxy environment in a worker thread on every request (~10 % of the operator's CPU).
    settings.networking.trust_env = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    env = OperatorSettings()  # read from the environment
    api = kube.KubeClient.from_environment()
    for role in builders.cluster_roles():  # what every tenant namespace binds
        await kube.apply(api, role)
    children = Children(
        api,
        [(api_version, kind) for api_version, _plural, kind in CHILDREN],
        SHAPES,
        f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}",
    )
    await children.start()  # before any handler looks a child up
    memo["stores"] = Stores(
        api=api,
        children=children,
        db=Database(
            env.database_url.get_secret_value(),
            pool_size=env.db_pool_size,
            timeout=env.store_timeout,
        ),
        cache=Cache(env.redis_url.get_secret_value(), timeout=env.store_timeout),
        vectors=VectorStore(env.chroma_url, timeout=env.store_timeout),
        settings=env,
        gate=asyncio.Semaphore(env.max_concurrent_reconciles),
    )
    log.info("coachops operator configured (drift check every %.0f s)", DRIFT_INTERVAL)


@kopf.on.login()
async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """kopf's watches and the operator's own calls use the same credentials."""
    return kube.login(settings)


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    stores = memo.get("stores")
    if isinstance(stores, Stores):
        await asyncio.gather(
            stores.children.stop(),
            stores.db.close(),
            stores.cache.close(),
            stores.vectors.close(),
            stores.api.close(),
            return_exceptions=True,
        )


# ---------------------------------------------------------------- indexes


@kopf.index(*CREATORS)
async def creators_by_namespace(
    name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[str, Any]:
    return {
        c.creator_namespace(name): {
            "name": name,
            "ready": cond.is_true(status.get("conditions"), cond.READY),
            "database": cond.is_true(status.get("conditions"), cond.DATABASE_READY),
            "reason": (cond.get(status.get("conditions"), cond.READY) or {}).get("reason", ""),
            "reclaim": spec.get("reclaimPolicy", "Retain"),
            "deleting": bool(meta.get("deletionTimestamp")),
        }
    }


@kopf.index(*PROGRAMS)
async def programs_by_namespace(name: str, namespace: str | None, **_: Any) -> dict[str, str]:
    return {namespace or "": name}


def program_count(creator: str, kwargs: Mapping[str, Any]) -> int:
    programs = kwargs.get("programs_by_namespace")
    namespace = c.creator_namespace(creator)
    if programs is None or namespace not in programs:
        return 0
    return len(list(programs[namespace]))


def _one(index: Any, key: str) -> Any:
    if index is None or key not in index:
        return None
    for value in index[key]:
        return value
    return None


# ---------------------------------------------------------------- Creator


def _publish(
    outcome: Outcome, name: str, body: kopf.Body, patch: kopf.Patch, programs: int | None
) -> None:
    for key, value in outcome.status.items():
        patch.status[key] = value
    if programs is not None:
        patch.status["programs"] = programs
    for type_, reason, message in outcome.events:
        kopf.event(body, type=type_, reason=reason, message=message)
    metrics.record_conditions("Creator", name, outcome.status.get("conditions", []))


async def _reconcile(
    stores: Stores, name: str, body: kopf.Body, kwargs: Mapping[str, Any]
) -> Outcome:
    namespace = c.creator_namespace(name)
    async with stores.gate:  # bounded concurrency: queueing here is not a store failure
        return await _reconcile_now(stores, name, body, kwargs, namespace)


async def _reconcile_now(
    stores: Stores, name: str, body: kopf.Body, kwargs: Mapping[str, Any], namespace: str
) -> Outcome:
    started = time.monotonic()
    outcome = await reconcile_creator(
        stores,
        name=name,
        uid=str(body.metadata.uid),
        spec_raw=body.spec,
        generation=int(body.metadata.get("generation") or 0),
        old_status=body.status,
        lookup=lambda kind, child: stores.children.find(name, kind, namespace, child),
    )
    metrics.RECONCILE_SECONDS.labels("Creator").observe(time.monotonic() - started)
    result = "permanent" if outcome.permanent else "retry" if outcome.retry else "ok"
    metrics.RECONCILES.labels("Creator", result).inc()
    for condition in outcome.status.get("conditions", []):
        if condition["status"] == "False" and condition["type"] != cond.READY:
            metrics.ERRORS.labels("Creator", condition["reason"]).inc()
    return outcome


@kopf.on.resume(*CREATORS)
@kopf.on.create(*CREATORS)
@kopf.on.update(*CREATORS)
async def reconcile(
    name: str,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    """Create, update or resume a Creator: converge every child and store."""
    stores = _stores(memo)
    async with stores.lock(name):
        outcome = await _reconcile(stores, name, body, kwargs)
    programs = kwargs.get("programs_by_namespace")
    count = (
        len(list(programs[c.creator_namespace(name)]))
        if programs is not None and c.creator_namespace(name) in programs
        else 0
    )
    _publish(outcome, name, body, patch, count)
    if outcome.permanent:
        raise kopf.PermanentError(outcome.permanent)
    if outcome.retry:
        # Waiting for the quota controller is not a failure: poll it, don't back off.
        quick = all("QuotaPending" in reason for reason in outcome.retry)
        delay = 2.0 if quick else backoff(retry)
        logger.warning("will retry in %.0f s: %s", delay, "; ".join(outcome.retry))
        raise kopf.TemporaryError("; ".join(outcome.retry), delay=delay)
    log.info(
        "creator %s reconciled: %s",
        name,
        (cond.get(outcome.status["conditions"], cond.READY) or {}).get("reason"),
    )


def settled(body: kopf.Body) -> bool:
    """The change handler has finished with this generation (kopf keeps its progress in
    status.kopf.progress while it runs or waits to retry); until then the drift timer
    stays out."""
    if body.status.get("observedGeneration") != body.metadata.get("generation"):
        return False
    kopf_status = body.status.get("kopf") or {}
    progress = (kopf_status.get("progress") or {}).get("reconcile")
    if not isinstance(progress, dict):
        return True
    return bool(progress.get("success") or progress.get("failure"))


async def find_drift(stores: Stores, name: str, body: kopf.Body) -> list[str]:
    """Everything that differs from what the Creator asks for (no API calls for objects)."""
    key = (str(body.metadata.uid), int(body.metadata.get("generation") or 0))
    cached = stores.desired.get(name)
    if cached is not None and cached[0] == key:
        spec, desired = cached[1], cached[2]
    else:
        try:
            spec = parse_spec(body.spec)
        except InvalidSpecError:
            return []
        ref = CreatorRef(name, key[0])
        desired = [
            builders.namespace(ref),
            *builders.namespaced_children(ref, spec),
            *builders.runtime_objects(ref, spec, stores.runtime_env),
        ]
        stores.desired[name] = (key, spec, desired)
    ref = CreatorRef(name, key[0])
    live = stores.children.of(name)
    autoscaled = not spec.suspended
    problems = []
    for manifest in desired:
        why = drift.differs(manifest, live.get(builders.key(manifest)), autoscaled=autoscaled)
        if why:
            problems.append(f"{manifest['kind']} {manifest['metadata']['name']} {why}")
    secret = live.get(("Secret", ref.namespace, c.TENANT_SECRET))
    if secret is None:
        problems.append(f"Secret {c.TENANT_SECRET} missing")
    if spec.isolation != "dedicated":
        for _api, kind in builders.RUNTIME_KINDS:
            if (kind, ref.namespace, c.RUNTIME_NAME) in live:
                problems.append(f"{kind} {c.RUNTIME_NAME} left from a dedicated runtime")
    try:
        # Roles and Redis users of every tenant come from one shared snapshot per interval;
        # the tenant row needs its tenant's context, so it is checked every 6th tick.
        await stores.refresh_snapshot(DRIFT_INTERVAL / 2)
        tenant = c.tenant_id(name)
        role = c.tenant_db_role(name)
        role_problems, bound = stores.roles.get(role, (["missing"], None))
        if role_problems or bound != tenant:
            # The snapshot may predate the last reconcile: ask again, for this role only.
            problems += await stores.db.role_problems(role, tenant)
        if spec.isolation == "dedicated":
            user = c.tenant_redis_user(name)
            prefix = c.tenant_redis_prefix(name)
            if rules_problems(user, stores.redis_users.get(user), prefix):
                problems += await stores.cache.user_problems(user, prefix, None)
        tick = stores.ticks[name] = stores.ticks.get(name, 0) + 1
        if tick % 6 == 0:
            state = await stores.db.tenant_state(tenant)
            if state is None:
                problems.append("tenant row missing")
            elif state[0] != spec.suspended:
                problems.append("tenant row's suspended flag differs")
    except (*PG_ERRORS, *REDIS_ERRORS) as error:
        if cond.is_true(body.status.get("conditions"), cond.READY):
            problems.append(f"a store is unreachable ({describe(error)})")
    return problems


@kopf.timer(*CREATORS, interval=DRIFT_INTERVAL, initial_delay=DRIFT_INTERVAL)
async def check_drift(
    name: str,
    body: kopf.Body,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    """Repair drift (edited or deleted children, roles, RLS policies) and refresh status."""
    if meta.get("deletionTimestamp"):
        return
    stores = _stores(memo)
    lock = stores.lock(name)
    if lock.locked() or not settled(body):
        return  # the change handlers own it until they have finished a pass
    async with lock:
        await _check_policies(stores, body, logger)
        problems = await find_drift(stores, name, body)
        programs = kwargs.get("programs_by_namespace")
        namespace = c.creator_namespace(name)
        count = (
            len(list(programs[namespace])) if programs is not None and namespace in programs else 0
        )
        if problems:
            summary = "; ".join(problems)
            logger.warning("drift: %s", summary)
            kopf.event(body, type="Warning", reason="DriftDetected", message=summary[:1000])
            for problem in problems:
                metrics.DRIFT_REPAIRS.labels(problem.split(" ")[0]).inc()
            outcome = await _reconcile(stores, name, body, kwargs)
            _publish(outcome, name, body, patch, count)
            if not outcome.retry and not outcome.permanent:
                kopf.event(body, type="Normal", reason="DriftRepaired", message=summary[:1000])
            return
        _refresh_status(stores, name, body, patch, count)


def _refresh_status(
    stores: Stores,
    name: str,
    body: kopf.Body,
    patch: kopf.Patch,
    programs: int,
) -> None:
    """Keep RuntimeReady, Ready and the program count true without a full reconcile."""
    if body.status.get("programs") != programs:
        patch.status["programs"] = programs
    try:
        spec = parse_spec(body.spec)
    except InvalidSpecError:
        return
    from coachops_operator.reconcile import runtime_observation

    old = list(body.status.get("conditions") or [])
    if not old:
        return
    deployment = stores.children.find(name, "Deployment", c.creator_namespace(name), c.RUNTIME_NAME)
    runtime = runtime_observation(spec, deployment if spec.isolation == "dedicated" else None)
    parts = [
        Observation(
            str(item["type"]),
            item["status"],
            str(item.get("reason", "")),
            str(item.get("message", "")),
        )
        for item in old
        if item["type"] in cond.CREATOR_PARTS and item["type"] != cond.RUNTIME_READY
    ]
    parts.append(runtime)
    ready = cond.summarize(parts, suspended=spec.suspended)
    generation = int(body.metadata.get("generation") or 0)
    merged = cond.merge(old, [runtime, ready], generation)
    if [(m["type"], m["status"], m["reason"]) for m in merged] != [
        (o.get("type"), o.get("status"), o.get("reason")) for o in old
    ]:
        patch.status["conditions"] = merged
        metrics.record_conditions("Creator", name, merged)
        from coachops_operator.reconcile import transition_events

        for type_, reason, message in transition_events(old, [runtime, ready]):
            kopf.event(body, type=type_, reason=reason, message=message)


async def _check_policies(stores: Stores, body: kopf.Body, logger: kopf.Logger) -> None:
    """Row-level security is global: check (and repair) it at most once per interval."""
    now = time.monotonic()
    if now - stores.policy_checked_at < DRIFT_INTERVAL:
        return
    stores.policy_checked_at = now
    try:
        repaired = await stores.db.repair_policies()
    except PG_ERRORS as error:
        logger.warning("cannot check row-level security: %s", describe(error))
        return
    if repaired:
        message = "restored row-level security: " + "; ".join(repaired)
        logger.warning(message)
        metrics.DRIFT_REPAIRS.labels("RowLevelSecurity").inc()
        kopf.event(body, type="Warning", reason="RowLevelSecurityRepaired", message=message[:1000])


@kopf.on.delete(*CREATORS)
async def delete_creator(
    name: str, body: kopf.Body, memo: kopf.Memo, retry: int, logger: kopf.Logger, **_: Any
) -> None:
    """Programs first, then the tenant's data by its reclaim policy, then the namespace."""
    stores = _stores(memo)
    namespace = c.creator_namespace(name)
    try:
        programs = await kube.list_objects(stores.api, c.API_VERSION, c.PROGRAM_KIND, namespace)
    except kube.KubeError as error:
        if error.status != 404:
            raise kopf.TemporaryError(
                f"cannot list programs: {kube.api_error_summary(error)}", delay=backoff(retry)
            ) from None
        programs = []
    if programs:
        for program in programs:
            if not program["metadata"].get("deletionTimestamp"):
                await kube.delete(
                    stores.api,
                    c.API_VERSION,
                    c.PROGRAM_KIND,
                    namespace,
                    program["metadata"]["name"],
                )
        message = (
            f"waiting for {len(programs)} CoachingProgram(s) in {namespace} to be deleted first"
        )
        if retry == 0:
            kopf.event(body, type="Normal", reason="DeletingPrograms", message=message)
        raise kopf.TemporaryError(message, delay=2)
    try:
        spec = parse_spec(body.spec)
    except InvalidSpecError:
        spec = None
    if spec is not None:
        async with stores.lock(name):
            try:
                type_, reason, message = await delete_creator_data(stores, name, spec)
            except STORE_FAILURES as error:
                detail = describe(error)
                kopf.event(
                    body, type="Warning", reason="ReclaimFailed", message=f"will retry: {detail}"
                )
                raise kopf.TemporaryError(
                    f"reclaim failed: {detail}", delay=backoff(retry)
                ) from None
        kopf.event(body, type=type_, reason=reason, message=message)
        log.info("creator %s: %s", name, message)
    await kube.delete(stores.api, "v1", "Namespace", None, namespace)
    metrics.forget("Creator", name)
    stores.locks.pop(name, None)
    stores.desired.pop(name, None)
    stores.ticks.pop(name, None)


# ---------------------------------------------------------------- CoachingProgram


def _program_conditions(
    status: Mapping[str, Any], generation: int, observation: Observation
) -> list[dict[str, Any]]:
    return cond.merge(status.get("conditions"), [observation], generation)


@kopf.on.resume(*PROGRAMS)
@kopf.on.create(*PROGRAMS)
@kopf.on.update(*PROGRAMS)
async def sync_program(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **kwargs: Any,
) -> None:
    """Copy the program's configuration into PostgreSQL under its tenant."""
    stores = _stores(memo)
    namespace = namespace or ""
    generation = int(body.metadata.get("generation") or 0)
    started = time.monotonic()
    observation, error = await _sync_program(stores, name, namespace, body, kwargs)
    metrics.RECONCILE_SECONDS.labels("CoachingProgram").observe(time.monotonic() - started)
    conditions = _program_conditions(status, generation, observation)
    patch.status["conditions"] = conditions
    patch.status["observedGeneration"] = generation
    patch.status["programId"] = str(_program_id(namespace, name))
    patch.status["channels"] = sum(1 for ch in spec.get("channels", []) if ch.get("enabled", True))
    metrics.record_conditions("CoachingProgram", f"{namespace}/{name}", conditions)
    old = cond.get(status.get("conditions"), cond.READY)
    if old is None or old.get("reason") != observation.reason:
        kopf.event(
            body,
            type="Normal" if observation.status == "True" else "Warning",
            reason=observation.reason,
            message=observation.message,
        )
    if error == "permanent":
        metrics.RECONCILES.labels("CoachingProgram", "permanent").inc()
        raise kopf.PermanentError(observation.message)
    if error:
        metrics.RECONCILES.labels("CoachingProgram", "retry").inc()
        raise kopf.TemporaryError(observation.message, delay=min(backoff(retry), 5))
    metrics.RECONCILES.labels("CoachingProgram", "ok").inc()


def _program_id(namespace: str, name: str) -> Any:
    return c.program_id(namespace.removeprefix(c.NAMESPACE_PREFIX), name)


async def _sync_program(
    stores: Stores, name: str, namespace: str, body: kopf.Body, kwargs: Mapping[str, Any]
) -> tuple[Observation, str | None]:
    creator = _one(kwargs.get("creators_by_namespace"), namespace)
    if creator is None:
        return (
            Observation.false(
                cond.READY, "CreatorNotFound", f"no Creator owns namespace {namespace}"
            ),
            "retry",
        )
    not_ready = f"Creator {creator['name']} is not Ready ({creator['reason'] or 'pending'})"
    if not creator["database"]:
        return Observation.false(cond.READY, "CreatorNotReady", not_ready), "retry"
    try:
        parsed = CoachingProgramSpec.model_validate(dict(body.spec))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Observation.false(
            cond.READY, "InvalidSpec", f"spec.{where}: {first['msg']}"
        ), "permanent"
    tenant = c.tenant_id(creator["name"])
    try:
        await stores.db.upsert_program(
            tenant,
            _program_id(namespace, name),
            name,
            parsed.title,
            parsed.model_dump(by_alias=True, mode="json"),
            int(body.metadata.get("generation") or 0),
        )
    except PG_ERRORS as error:
        return Observation.false(cond.READY, "DatabaseUnavailable", describe(error)), "retry"
    synced = (
        f"configuration (generation {body.metadata.get('generation')}) copied to tenant "
        f"{creator['name']}"
    )
    if not creator["ready"]:
        # The copy is done; Ready follows the creator (the timer re-checks it).
        return Observation.false(cond.READY, "CreatorNotReady", f"{not_ready}; {synced}"), None
    return Observation.true(cond.READY, "Synced", synced), None


@kopf.timer(*PROGRAMS, interval=DRIFT_INTERVAL, initial_delay=DRIFT_INTERVAL)
async def recheck_program(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    """Keep Ready true to the creator's readiness; re-copy a program row that went missing."""
    if meta.get("deletionTimestamp"):
        return
    stores = _stores(memo)
    namespace = namespace or ""
    creator = _one(kwargs.get("creators_by_namespace"), namespace)
    ready_now = cond.is_true(status.get("conditions"), cond.READY)
    needs_sync = creator is not None and creator["ready"] and not ready_now
    if creator is not None and creator["ready"] and ready_now:
        try:
            synced = await stores.db.program_generation(
                c.tenant_id(creator["name"]), _program_id(namespace, name)
            )
        except PG_ERRORS:
            synced = -1
        needs_sync = synced != int(body.metadata.get("generation") or 0)
    if needs_sync or (ready_now and (creator is None or not creator["ready"])):
        observation, _error = await _sync_program(stores, name, namespace, body, kwargs)
        generation = int(body.metadata.get("generation") or 0)
        conditions = _program_conditions(status, generation, observation)
        patch.status["conditions"] = conditions
        metrics.record_conditions("CoachingProgram", f"{namespace}/{name}", conditions)
        kopf.event(
            body,
            type="Normal" if observation.status == "True" else "Warning",
            reason=observation.reason,
            message=observation.message,
        )


@kopf.on.delete(*PROGRAMS)
async def delete_program(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    retry: int,
    **kwargs: Any,
) -> None:
    """Remove the program's row (reclaimPolicy Delete) or keep it marked deleted (Retain)."""
    stores = _stores(memo)
    namespace = namespace or ""
    creator = _one(kwargs.get("creators_by_namespace"), namespace)
    creator_name = creator["name"] if creator else namespace.removeprefix(c.NAMESPACE_PREFIX)
    keep = (creator or {}).get("reclaim", "Retain") != "Delete"
    try:
        await stores.db.remove_program(
            c.tenant_id(creator_name), _program_id(namespace, name), keep=keep
        )
    except PG_ERRORS as error:
        raise kopf.TemporaryError(f"database: {describe(error)}", delay=backoff(retry)) from None
    metrics.forget("CoachingProgram", f"{namespace}/{name}")
    kopf.event(
        body,
        type="Normal",
        reason="ProgramRetained" if keep else "ProgramDeleted",
        message="program row kept, marked deleted" if keep else "program row deleted",
    )
