"""The kopf handlers: each translates between kopf and the module that does the work.

Startup applies the ClusterRoles every tenant namespace binds, starts the index of
children and builds the shared clients (``stores.Stores``). The Creator handlers call
``creator.py`` (reconcile, deletion); the CoachingProgram handlers call ``program.py``.
Here their results become status patches, Events and
``kopf.TemporaryError``/``kopf.PermanentError``.

The periodic re-checks are not kopf timers but one task per kind for all its objects
(``sweep.py``): the Creators' drift check (``creator_sweep.py``) and the programs' re-check
(``program_sweep.py``), started at start-up and stopped at cleanup; they read the objects
from kopf's indexes, whose values are their latest bodies.

Importing this module registers the handlers with kopf's default registry, and reads the
operator's settings (``settings.load``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from coachops_crds import constants as c
from coachops_operator import (
    builders,
    creator,
    creator_sweep,
    credentials,
    kinds,
    kube,
    program_models,
    program_sweep,
)
from coachops_operator import conditions as cond
from coachops_operator import program as programs
from coachops_operator.children import Children
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.database import Database
from coachops_operator.errors import describe
from coachops_operator.model_pulls import ModelPulls
from coachops_operator.model_server import ModelServer
from coachops_operator.reconcile import Event, Outcome
from coachops_operator.redis_users import RedisUsers
from coachops_operator.retry import TryAgainError, backoff, delay, summary
from coachops_operator.settings import load
from coachops_operator.stores import Stores
from coachops_operator.sweep import Sweep
from coachops_operator.vectors import VectorStore

log = logging.getLogger("coachops_operator")

CREATORS = (c.GROUP, c.VERSION, c.CREATOR_PLURAL)
PROGRAMS = (c.GROUP, c.VERSION, c.PROGRAM_PLURAL)
SETTINGS = load()
DRIFT_INTERVAL = SETTINGS.drift_interval
# kopf keeps the change handler's progress under status.kopf.progress.<id>; the Creators'
# and the programs' sweeps read it there (drift_check.settled) to stay out until the
# handler is done.
RECONCILE_ID = "reconcile"
PROGRAM_SYNC_ID = "sync_program"
CREATOR_WAIT = 5.0  # seconds a new program's handler waits for its Creator to show Ready


def _stores(memo: kopf.Memo) -> Stores:
    stores: Stores = memo["stores"]
    return stores


def _poster(body: kopf.Body) -> Callable[[Event], None]:
    def post(event: Event) -> None:
        type_, reason, message = event
        kopf.event(body, type=type_, reason=reason, message=message)

    return post


# ---------------------------------------------------------------- startup and cleanup


def _program_sweep(memo: kopf.Memo) -> program_sweep.ProgramSweep:
    sweep: program_sweep.ProgramSweep = memo["program_sweep"]
    return sweep


def _creator_sweep(memo: kopf.Memo) -> creator_sweep.CreatorSweep:
    sweep: creator_sweep.CreatorSweep = memo["creator_sweep"]
    return sweep


def _bodies(index: Any) -> Callable[[], list[Mapping[str, Any]]]:
    """Every body a kopf index holds, read afresh at each call."""
    return lambda: [body for key in list(index) for body in index.get(key, ())]


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    settings.persistence.finalizer = c.FINALIZER
    # kopf's bookkeeping (status.kopf) travels with the status the handlers write: one
    # PATCH per handled change instead of a status PATCH plus an annotations PATCH.
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    api = kube.KubeClient.from_environment()
    for role in builders.cluster_roles():  # what every tenant namespace binds
        await kube.apply(api, role)
    children = Children(
        api,
        [(kind.api_version, kind.kind) for kind in kinds.CHILD_KINDS],
        builders.SHAPES,
        f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}",
    )
    await children.start()  # before any handler looks a child up
    stores = memo["stores"] = Stores(
        api=api,
        children=children,
        db=Database(
            SETTINGS.database_url.get_secret_value(),
            pool_size=SETTINGS.db_pool_size,
            timeout=SETTINGS.store_timeout,
        ),
        redis=RedisUsers(SETTINGS.redis_url.get_secret_value(), timeout=SETTINGS.store_timeout),
        vectors=VectorStore(SETTINGS.chroma_url, timeout=SETTINGS.store_timeout),
        settings=SETTINGS,
        gate=asyncio.Semaphore(SETTINGS.max_concurrent_reconciles),
    )
    if SETTINGS.ollama_url:
        pulls = ModelPulls(
            ModelServer(SETTINGS.ollama_url, timeout=SETTINGS.store_timeout),
            insecure=SETTINGS.model_registry_insecure,
            gc_grace=SETTINGS.model_gc_grace,
            stall_after=SETTINGS.model_pull_stall,
        )

        async def report(state: Any, change: Any, waiters: Any) -> None:
            await program_models.report(stores, state, change, waiters)

        pulls.listener = report
        stores.pulls = pulls
        memo["model_gc"] = asyncio.create_task(program_models.collect_forever(stores))
    # kopf hands start-up handlers the same live index objects its indexers fill later.
    memo["creator_sweep"] = creator_sweep.CreatorSweep(
        stores,
        _bodies(kwargs["creator_bodies"]),
        lambda name: _program_count(name, kwargs),
        interval=DRIFT_INTERVAL,
        handler_id=RECONCILE_ID,
    )
    memo["program_sweep"] = program_sweep.ProgramSweep(
        stores,
        _bodies(kwargs["programs_by_namespace"]),
        lambda namespace: _creator_of(namespace, kwargs),
        interval=DRIFT_INTERVAL,
        handler_id=PROGRAM_SYNC_ID,
    )
    for sweep in (memo["creator_sweep"], memo["program_sweep"]):
        sweep.start()
    log.info("coachops operator configured (drift check every %.0f s)", DRIFT_INTERVAL)


@kopf.on.login()
async def login(**_: Any) -> kopf.AiohttpSession:
    """kopf's watches and the operator's own calls use the same credentials and fence."""
    return await kube.kopf_login(credentials.load())


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    gc = memo.get("model_gc")
    if isinstance(gc, asyncio.Task):
        gc.cancel()
    for sweep in (memo.get("creator_sweep"), memo.get("program_sweep")):
        if isinstance(sweep, Sweep):
            await sweep.stop()
    stores = memo.get("stores")
    if isinstance(stores, Stores):
        await asyncio.gather(
            *([stores.pulls.close()] if stores.pulls is not None else []),
            stores.children.stop(),
            stores.db.close(),
            stores.redis.close(),
            stores.vectors.close(),
            stores.api.close(),
            return_exceptions=True,
        )


# ---------------------------------------------------------------- indexes


@kopf.index(*CREATORS)
async def creators_by_namespace(
    name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, **_: Any
) -> dict[str, programs.CreatorSummary]:
    return {c.creator_namespace(name): programs.summarize_creator(name, spec, status, meta)}


BODY_META = ("namespace", "name", "uid", "generation", "deletionTimestamp")


def _slim(body: kopf.Body) -> dict[str, Any]:
    """What a re-check reads of a body (not managedFields, annotations or labels)."""
    meta = body["metadata"]
    return {
        "metadata": {key: meta[key] for key in BODY_META if key in meta},
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


@kopf.index(*CREATORS)
async def creator_bodies(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Each Creator's latest body, by name: walked by the Creators' sweep."""
    return {name: _slim(body)}


@kopf.index(*PROGRAMS)
async def programs_by_namespace(
    namespace: str | None, body: kopf.Body, **_: Any
) -> dict[str, dict[str, Any]]:
    """Each program's latest body, by namespace: counted for the Creator's status and
    walked by the programs' sweep."""
    return {namespace or "": _slim(body)}


def _program_count(creator_name: str, kwargs: Mapping[str, Any]) -> int:
    index = kwargs.get("programs_by_namespace")
    namespace = c.creator_namespace(creator_name)
    if index is None or namespace not in index:
        return 0
    return len(list(index[namespace]))


async def _creator_settled(
    namespace: str, kwargs: Mapping[str, Any], wait: float = CREATOR_WAIT
) -> programs.CreatorSummary | None:
    """The program's Creator from the index, given up to ``wait`` seconds to be Ready.

    A program is often created right after its Creator turned Ready (its namespace and
    quota are there only then), and kopf may not have indexed that change yet: waiting on
    the live index a moment costs no request, where going ahead would write the program
    as CreatorNotReady and make it Ready only on its re-check, with a second status patch and
    Event."""
    deadline = time.monotonic() + wait
    found = _creator_of(namespace, kwargs)
    while (found is None or not found["ready"]) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = _creator_of(namespace, kwargs)
    return found


def _creator_of(namespace: str, kwargs: Mapping[str, Any]) -> programs.CreatorSummary | None:
    index = kwargs.get("creators_by_namespace")
    if index is None or namespace not in index:
        return None
    for entry in index[namespace]:
        found: programs.CreatorSummary = entry
        return found
    return None


# ---------------------------------------------------------------- Creator


def _publish(outcome: Outcome, body: kopf.Body, patch: kopf.Patch, programs_: int) -> None:
    for key, value in outcome.status.items():
        patch.status[key] = value
    patch.status["programs"] = programs_
    post = _poster(body)
    for event in outcome.events:
        post(event)


@kopf.on.resume(*CREATORS, id=RECONCILE_ID)
@kopf.on.create(*CREATORS, id=RECONCILE_ID)
@kopf.on.update(*CREATORS, id=RECONCILE_ID)
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
    # The sweep stays off the Creator meanwhile, and counts it as checked when done.
    async with _creator_sweep(memo).exclusive(("", name)), stores.lock(name):
        outcome = await creator.reconcile(stores, name, body)
    _publish(outcome, body, patch, _program_count(name, kwargs))
    if outcome.permanent:
        raise kopf.PermanentError(outcome.permanent)
    wait = delay(outcome.retry, retry)
    if wait is not None:
        logger.warning("will retry in %.0f s: %s", wait, summary(outcome.retry))
        raise kopf.TemporaryError(summary(outcome.retry), delay=wait)
    log.info(
        "creator %s reconciled: %s",
        name,
        (cond.get(outcome.status["conditions"], cond.READY) or {}).get("reason"),
    )


@kopf.on.delete(*CREATORS)
async def delete_creator(name: str, body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Programs first, then the tenant's data by its reclaim policy, then the namespace."""
    try:
        await creator.delete(_stores(memo), name, body, retry, _poster(body))
    except TryAgainError as error:
        raise kopf.TemporaryError(str(error), delay=error.delay) from None
    _creator_sweep(memo).forget(("", name))


# ---------------------------------------------------------------- CoachingProgram


def _post_ready(body: kopf.Body, observation: Observation) -> None:
    kopf.event(
        body,
        type="Normal" if observation.status == "True" else "Warning",
        reason=observation.reason,
        message=observation.message,
    )


@kopf.on.resume(*PROGRAMS, id=PROGRAM_SYNC_ID)
@kopf.on.create(*PROGRAMS, id=PROGRAM_SYNC_ID)
@kopf.on.update(*PROGRAMS, id=PROGRAM_SYNC_ID)
async def sync_program(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **kwargs: Any,
) -> None:
    """Copy the program's configuration into PostgreSQL and check its every part."""
    namespace = namespace or ""
    async with _program_sweep(memo).exclusive((namespace, name)):
        creator_ = await _creator_settled(namespace, kwargs)
        done = await programs.sync(_stores(memo), name, namespace, body, creator_)
    for key, value in done.status.items():
        patch.status[key] = value
    if programs.changed(body, done.ready):
        _post_ready(body, done.ready)
    if done.result is programs.Result.PERMANENT:
        raise kopf.PermanentError(done.ready.message)
    if done.result is programs.Result.RETRY:
        raise kopf.TemporaryError(done.ready.message, delay=min(backoff(retry), 5))


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
    namespace = namespace or ""
    sweep = _program_sweep(memo)
    try:
        async with sweep.exclusive((namespace, name)):  # no re-check runs or starts meanwhile
            keep = await programs.remove(
                _stores(memo), name, namespace, _creator_of(namespace, kwargs)
            )
    except PG_ERRORS as error:
        raise kopf.TemporaryError(f"database: {describe(error)}", delay=backoff(retry)) from None
    sweep.forget((namespace, name))
    kopf.event(
        body,
        type="Normal",
        reason="ProgramRetained" if keep else "ProgramDeleted",
        message="program row kept, marked deleted" if keep else "program row deleted",
    )
