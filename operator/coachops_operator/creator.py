"""A Creator's life around its reconcile: run one (bounded and measured), keep the status
true between reconciles, and delete one (its programs first, then its data by the reclaim
policy, then its namespace).

Nothing here knows kopf: results are data (``Outcome``, status fields, Events) and
``TryAgainError``; ``handlers.py`` turns them into patches, Events and kopf's errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_operator import conditions as cond
from coachops_operator import kube, metrics
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.reconcile import (
    Event,
    InvalidSpecError,
    Outcome,
    parse_spec,
    reconcile_creator,
    runtime_observation,
    transition_events,
)
from coachops_operator.redis_users import STORE_ERRORS as REDIS_ERRORS
from coachops_operator.retry import POLL_SECONDS, TryAgainError, backoff
from coachops_operator.stores import Stores
from coachops_operator.vectors import STORE_ERRORS as CHROMA_ERRORS
from coachops_operator.vectors import VectorStoreError

log = logging.getLogger("coachops_operator")

STORE_FAILURES: tuple[type[BaseException], ...] = (
    *PG_ERRORS,
    *REDIS_ERRORS,
    *CHROMA_ERRORS,
    VectorStoreError,
    *kube.KUBE_ERRORS,
)


def _generation(body: Mapping[str, Any]) -> int:
    return int(body["metadata"].get("generation") or 0)


async def reconcile(stores: Stores, name: str, body: Mapping[str, Any]) -> Outcome:
    """One reconcile of the Creator ``body``, at most ``max_concurrent_reconciles`` at once
    (queueing for a turn is not a store failure), with its metrics recorded."""
    namespace = c.creator_namespace(name)
    async with metrics.turn(stores.gate, "Creator"):
        started = time.monotonic()
        outcome = await reconcile_creator(
            stores,
            name=name,
            uid=str(body["metadata"]["uid"]),
            spec_raw=body.get("spec") or {},
            generation=_generation(body),
            old_status=body.get("status") or {},
            lookup=lambda kind, child: stores.children.find(name, kind, namespace, child),
        )
    metrics.RECONCILE_SECONDS.labels("Creator").observe(time.monotonic() - started)
    result = "permanent" if outcome.permanent else "retry" if outcome.retry else "ok"
    metrics.RECONCILES.labels("Creator", result).inc()
    for condition in outcome.status.get("conditions", []):
        if condition["status"] == "False" and condition["type"] != cond.READY:
            metrics.ERRORS.labels("Creator", condition["reason"]).inc()
    metrics.record_conditions("Creator", name, outcome.status.get("conditions", []))
    return outcome


def refresh_status(
    stores: Stores, name: str, body: Mapping[str, Any], programs: int
) -> tuple[dict[str, Any], list[Event]]:
    """The status fields to change, and the Events to post, to keep RuntimeReady, Ready
    and the program count true without a full reconcile."""
    status = body.get("status") or {}
    changes: dict[str, Any] = {}
    if status.get("programs") != programs:
        changes["programs"] = programs
    try:
        spec = parse_spec(body.get("spec") or {})
    except InvalidSpecError:
        return changes, []
    old = list(status.get("conditions") or [])
    if not old:
        return changes, []
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
    merged = cond.merge(old, [runtime, ready], _generation(body))
    if [(m["type"], m["status"], m["reason"]) for m in merged] == [
        (o.get("type"), o.get("status"), o.get("reason")) for o in old
    ]:
        return changes, []
    changes["conditions"] = merged
    metrics.record_conditions("Creator", name, merged)
    return changes, transition_events(old, [runtime, ready])


# ---------------------------------------------------------------- deletion


async def delete(
    stores: Stores,
    name: str,
    body: Mapping[str, Any],
    attempt: int,
    post: Callable[[Event], None],
) -> None:
    """Programs first, then the tenant's data by its reclaim policy, then the namespace.

    Raises ``TryAgainError`` until the programs are gone and the data is reclaimed; posts
    what it did through ``post``."""
    namespace = c.creator_namespace(name)
    try:
        programs = await kube.list_objects(stores.api, c.API_VERSION, c.PROGRAM_KIND, namespace)
    except kube.KubeError as error:
        if error.status != 404:
            raise TryAgainError(f"cannot list programs: {error}", backoff(attempt)) from None
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
        if attempt == 0:
            post(("Normal", "DeletingPrograms", message))
        raise TryAgainError(message, POLL_SECONDS)
    try:
        spec = parse_spec(body.get("spec") or {})
    except InvalidSpecError:
        spec = None
    if spec is not None:
        async with stores.lock(name):
            try:
                event = await reclaim(stores, name, spec)
            except STORE_FAILURES as error:
                detail = describe(error)
                post(("Warning", "ReclaimFailed", f"will retry: {detail}"))
                raise TryAgainError(f"reclaim failed: {detail}", backoff(attempt)) from None
        post(event)
        log.info("creator %s: %s", name, event[2])
    await kube.delete(stores.api, "v1", "Namespace", None, namespace)
    metrics.forget("Creator", name)
    stores.forget(name)


async def reclaim(stores: Stores, name: str, spec: CreatorSpec) -> Event:
    """Apply the reclaim policy to the tenant's data; returns the Event that says what."""
    tenant = c.tenant_id(name)
    role = c.tenant_db_role(name)
    prefix = c.tenant_redis_prefix(name)
    user = c.tenant_redis_user(name)
    chroma = c.chroma_tenant(name)
    if spec.reclaim_policy == "Delete":
        rows = await stores.db.drop_tenant(tenant, role)
        keys = await stores.redis.delete_keys(prefix)
        await stores.redis.delete_user(user)
        await stores.vectors.delete(chroma, c.CHROMA_DATABASE)
        return (
            "Normal",
            "TenantDataDeleted",
            f"reclaimPolicy Delete: removed tenant {tenant} ({rows} tenant row(s) and their "
            f"data), database role {role}, {keys} Redis key(s) under {prefix}, Redis user "
            f"{user} and Chroma database {chroma}/{c.CHROMA_DATABASE}",
        )
    await stores.db.retain_tenant(tenant, role)
    await stores.redis.disable_user(user)
    return (
        "Normal",
        "TenantDataRetained",
        f"reclaimPolicy Retain: kept the rows of tenant {tenant} (marked suspended), database "
        f"role {role} (login disabled), Redis keys under {prefix}, and Chroma database "
        f"{chroma}/{c.CHROMA_DATABASE}; recreate Creator {name} to serve them again",
    )
