"""The periodic drift check of a Creator, and its cadence.

``find_drift`` lists everything that differs from what a Creator asks for: its children
(from the watch-fed ``children.Children``, compared by ``drift.differs``: no API call),
its database role and Redis user (from one snapshot of every tenant's, at most half an
interval old, re-checked for this tenant alone when the snapshot suggests a problem) and,
every ``TENANT_ROW_EVERY``-th check, its tenant row. Row-level security is global and
checked once per pass of the Creators' sweep (``creator_sweep.py``, ``check_policies``).
A sweep stays out while the change handler is still working on the object (``settled``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from coachops_crds import constants as c
from coachops_operator import builders, drift, kinds, metrics
from coachops_operator import conditions as cond
from coachops_operator.builders import CreatorRef
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.reconcile import InvalidSpecError, parse_spec
from coachops_operator.redis_users import STORE_ERRORS as REDIS_ERRORS
from coachops_operator.redis_users import rules_problems
from coachops_operator.stores import Stores

log = logging.getLogger("coachops_operator")

TENANT_ROW_EVERY = 6  # the tenant row needs its tenant's context: one query per Creator


def settled(body: Mapping[str, Any], handler_id: str) -> bool:
    """The change handler ``handler_id`` has finished with this generation (kopf keeps its
    progress in ``status.kopf.progress.<handler id>`` while it runs or waits to retry);
    until then the sweeps (``sweep.py``) stay out."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return False
    kopf_status = status.get("kopf") or {}
    progress = (kopf_status.get("progress") or {}).get(handler_id)
    if not isinstance(progress, dict):
        return True
    return bool(progress.get("success") or progress.get("failure"))


async def find_drift(stores: Stores, name: str, body: Mapping[str, Any]) -> list[str]:
    """Everything that differs from what the Creator asks for (no API calls for objects)."""
    meta = body["metadata"]
    key = (str(meta["uid"]), int(meta.get("generation") or 0))
    cached = stores.desired.get(name)
    if cached is not None and cached[0] == key:
        spec, desired = cached[1], cached[2]
    else:
        try:
            spec = parse_spec(body.get("spec") or {})
        except InvalidSpecError:
            return []
        ref = CreatorRef(name, key[0])
        desired = [
            builders.namespace(ref),
            *builders.namespaced_children(ref, spec),
            *builders.runtime_objects(ref, spec, stores.runtime_env),
        ]
        stores.desired[name] = (key, spec, desired)
    namespace = c.creator_namespace(name)
    live = stores.children.of(name)
    autoscaled = not spec.suspended
    problems = []
    for manifest in desired:
        why = drift.differs(manifest, live.get(builders.key(manifest)), autoscaled=autoscaled)
        if why:
            problems.append(f"{manifest['kind']} {manifest['metadata']['name']} {why}")
    if ("Secret", namespace, c.TENANT_SECRET) not in live:
        problems.append(f"Secret {c.TENANT_SECRET} missing")
    if spec.isolation != "dedicated":
        for runtime_kind in kinds.RUNTIME_KINDS:
            if (runtime_kind.kind, namespace, c.RUNTIME_NAME) in live:
                problems.append(
                    f"{runtime_kind.kind} {c.RUNTIME_NAME} left from a dedicated runtime"
                )
    try:
        problems += await _store_drift(stores, name, dedicated=spec.isolation == "dedicated")
        tick = stores.ticks[name] = stores.ticks.get(name, 0) + 1
        if tick % TENANT_ROW_EVERY == 0:
            state = await stores.db.tenant_state(c.tenant_id(name))
            if state is None:
                problems.append("tenant row missing")
            elif state[0] != spec.suspended:
                problems.append("tenant row's suspended flag differs")
    except (*PG_ERRORS, *REDIS_ERRORS) as error:
        if cond.is_true((body.get("status") or {}).get("conditions"), cond.READY):
            problems.append(f"a store is unreachable ({describe(error)})")
    return problems


async def _store_drift(stores: Stores, name: str, *, dedicated: bool) -> list[str]:
    """The tenant's database role and Redis user, from the shared snapshot first."""
    await stores.refresh_snapshot(stores.settings.drift_interval / 2)
    problems: list[str] = []
    tenant = c.tenant_id(name)
    role = c.tenant_db_role(name)
    role_problems, bound = stores.roles.get(role, (["missing"], None))
    if role_problems or bound != tenant:
        # The snapshot may predate the last reconcile: ask again, for this role only.
        problems += await stores.db.role_problems(role, tenant)
    if dedicated:
        user = c.tenant_redis_user(name)
        prefix = c.tenant_redis_prefix(name)
        if rules_problems(user, stores.redis_users.get(user), prefix):
            problems += await stores.redis.user_problems(user, prefix, None)
    return problems


async def check_policies(stores: Stores) -> str | None:
    """Row-level security is global: check (and repair) it once per pass of the Creators'
    sweep, and never twice within half an interval. Returns what was restored, if anything."""
    now = time.monotonic()
    # The passes start an interval apart give or take the event loop's jitter: a bound of a
    # whole interval would skip every other pass whenever a pass starts a little early.
    if now - stores.policy_checked_at < stores.settings.drift_interval / 2:
        return None
    stores.policy_checked_at = now
    try:
        repaired = await stores.db.repair_policies()
    except PG_ERRORS as error:
        log.warning("cannot check row-level security: %s", describe(error))
        return None
    if not repaired:
        return None
    message = "restored row-level security: " + "; ".join(repaired)
    log.warning(message)
    metrics.DRIFT_REPAIRS.labels("RowLevelSecurity").inc()
    return message
