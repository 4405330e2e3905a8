"""A program's models: the Creator's allow-list, ModelReady and status.modelPullPercent.

``observe`` runs in the program's reconcile and re-check: it checks the allow-list and asks
``model_pulls`` for each model, which answers from memory or one shared ``/api/show``, and
starts at most one pull per model. While a pull runs, ``report`` (the pulls' listener)
patches every waiting program's ``ModelReady``, ``Ready`` and ``modelPullPercent`` and
posts the pull's Events; the reconcile never waits for a download. ``referenced`` lists
every program's models for the removal of unused ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coachops_crds import constants as c
from coachops_crds.models import CoachingProgramSpec, ModelSpec
from coachops_operator import conditions as cond
from coachops_operator import events, kube
from coachops_operator.conditions import Observation
from coachops_operator.model_pulls import Change, ModelState, Phase, Waiter
from coachops_operator.model_server import MODEL_ERRORS, resolve
from coachops_operator.stores import ProgramView, Stores

log = logging.getLogger("coachops_operator.models")

READY_MESSAGE = "configuration copied; models present; knowledge, channels and schedules ready"
_DEFAULTS = ModelSpec()


@dataclass(frozen=True)
class Models:
    observation: Observation  # ModelReady
    percent: int
    names: tuple[str, str]  # (chat, embedding) as Ollama knows them; empty when refused


def _allowed(stores: Stores, creator: Mapping[str, Any], spec: CoachingProgramSpec) -> str | None:
    """Why the program's models are refused by its Creator's allow-list, or None."""
    settings = stores.settings
    chat_list = list(creator.get("chat_models") or []) or settings.default_chat_models
    embedding_list = (
        list(creator.get("embedding_models") or []) or settings.default_embedding_models
    )
    refused = []
    if spec.model.chat not in chat_list:
        refused.append(f"chat model {spec.model.chat} (allowed: {', '.join(chat_list)})")
    if spec.model.embedding not in embedding_list:
        refused.append(
            f"embedding model {spec.model.embedding} (allowed: {', '.join(embedding_list)})"
        )
    if not refused:
        return None
    return f"Creator {creator['name']} does not allow " + "; ".join(refused)


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count} B"


LABELS = ("chat", "embedding")


def summarize(labelled: Sequence[tuple[str, ModelState]]) -> tuple[Observation, int]:
    """ModelReady and the pull percentage for the states of the program's models."""
    states = [state for _, state in labelled]
    percent = min((100 if s.phase is Phase.PRESENT else s.percent) for s in states)
    for label, state in labelled:
        if state.phase is Phase.FAILED:
            return Observation.false(
                cond.MODEL_READY,
                "PullFailed",
                f"{label} model {state.name}: {state.error} "
                f"(attempt {state.attempts}; retrying with backoff)",
            ), percent
    for label, state in labelled:
        if state.phase is Phase.UNAVAILABLE:
            return Observation.false(
                cond.MODEL_READY,
                "ModelServerUnavailable",
                f"{label} model {state.name}: Ollama did not answer ({state.error})",
            ), percent
    pulling = [
        f"{label} model {s.name}: {_size(s.completed)} of {_size(s.total)} ({s.percent}%)"
        for label, s in labelled
        if s.phase is Phase.PULLING
    ]
    if pulling:
        return Observation.false(cond.MODEL_READY, "Pulling", "; ".join(pulling)), percent
    if any(s.phase is Phase.UNKNOWN for s in states):
        return Observation.false(cond.MODEL_READY, "Checking", "asking Ollama"), percent
    return Observation.true(
        cond.MODEL_READY, "Ready", " and ".join(s.name for s in states) + " on Ollama"
    ), 100


def _view(stores: Stores, waiter: Waiter, body: Mapping[str, Any]) -> ProgramView:
    """The program's entry for progress reports, made before a pull can report."""
    view = stores.programs.get(waiter)
    if view is None:
        view = stores.programs[waiter] = ProgramView(
            uid=str(body["metadata"].get("uid", "")),
            generation=int(body["metadata"].get("generation") or 0),
            conditions=list((body.get("status") or {}).get("conditions") or []),
            models=("", ""),
        )
    return view


async def observe(
    stores: Stores,
    waiter: Waiter,
    body: Mapping[str, Any],
    spec: CoachingProgramSpec | None,
    creator: Mapping[str, Any] | None,
) -> Models:
    """ModelReady for one program (starting the pulls its models need)."""
    pulls = stores.pulls
    if pulls is None:
        return Models(
            Observation.false(
                cond.MODEL_READY,
                "NoModelServer",
                "the operator has no Ollama (COACHOPS_OPERATOR_OLLAMA_URL is empty)",
            ),
            0,
            ("", ""),
        )
    if spec is None or creator is None:
        pulls.release(waiter)
        why = "the spec is invalid" if spec is None else "no Creator owns the namespace"
        return Models(Observation.false(cond.MODEL_READY, "Pending", why), 0, ("", ""))
    refused = _allowed(stores, creator, spec)
    if refused:
        pulls.release(waiter)
        return Models(Observation.false(cond.MODEL_READY, "ModelNotAllowed", refused), 0, ("", ""))
    registry = stores.settings.model_registry
    # Replies from another server (an OpenAI-compatible API, or an Ollama at baseUrl) need
    # no chat model here; the embedding model is always the platform Ollama's.
    ours = spec.model.provider == "ollama" and not spec.model.base_url
    names = (
        resolve(spec.model.chat, registry) if ours else "",
        resolve(spec.model.embedding, registry),
    )
    pulls.release(waiter, keep=frozenset(names))
    _view(stores, waiter, body).models = names
    wanted = [(label, name) for label, name in zip(LABELS, names, strict=True) if name]
    states = await asyncio.gather(*(pulls.want(name, waiter) for _, name in wanted))
    observation, percent = summarize(
        [(label, state) for (label, _), state in zip(wanted, states, strict=True)]
    )
    return Models(observation, percent, names)


# ---------------------------------------------------------------- progress reports


_EVENTS = {
    Change.STARTED: ("Normal", "ModelPulling", "pulling model {name}"),
    Change.SUCCEEDED: ("Normal", "ModelPulled", "model {name} pulled"),
    Change.FAILED: ("Warning", "ModelPullFailed", "pulling model {name} failed: {error}"),
}


async def report(
    stores: Stores, state: ModelState, change: Change, waiters: Collection[Waiter]
) -> None:
    """The pulls' listener: patch each waiting program's status, post the Events."""
    await asyncio.gather(*(_report_one(stores, waiter, state, change) for waiter in waiters))


async def _report_one(stores: Stores, waiter: Waiter, state: ModelState, change: Change) -> None:
    view = stores.programs.get(waiter)
    if view is None or state.name not in view.models or stores.pulls is None:
        return
    namespace, name = waiter
    ref = events.ObjectRef(c.API_VERSION, c.PROGRAM_KIND, namespace, name, view.uid)
    if change in _EVENTS:
        type_, reason, template = _EVENTS[change]
        message = template.format(name=state.name, error=state.error)
        await events.post(stores.api, ref, type_, reason, message)
    if not view.settled:
        return  # the reconcile in progress writes the whole status, this state included
    states = [
        (label, stores.pulls.models.get(model) or ModelState(model))
        for label, model in zip(LABELS, view.models, strict=True)
        if model
    ]
    model, percent = summarize(states)
    parts = [
        model if part.type == cond.MODEL_READY else part
        for part in cond.observations(view.conditions, cond.PROGRAM_PARTS)
    ]
    ready = cond.summarize(parts, ready=READY_MESSAGE)
    conditions = cond.merge(view.conditions, [model, ready], view.generation)
    view.conditions = conditions
    try:
        await kube.patch_status(
            stores.api,
            c.API_VERSION,
            c.PROGRAM_KIND,
            namespace,
            name,
            {"conditions": conditions, "modelPullPercent": percent},
        )
    except kube.KUBE_ERRORS as error:
        # A program deleted meanwhile has nothing to report to.
        if not isinstance(error, kube.KubeError) or error.status != 404:
            log.warning("reporting pull progress to %s/%s: %s", namespace, name, error)
        return


# ---------------------------------------------------------------- removal of unused models


async def referenced(stores: Stores) -> set[str]:
    """Every model any CoachingProgram names (one LIST of all programs)."""
    found = await stores.api.request("GET", kube.all_namespaces_path(c.API_VERSION, c.PROGRAM_KIND))
    registry = stores.settings.model_registry
    names: set[str] = set()
    for item in found.get("items", []):
        model = (item.get("spec") or {}).get("model") or {}
        names.add(resolve(str(model.get("chat") or _DEFAULTS.chat), registry))
        names.add(resolve(str(model.get("embedding") or _DEFAULTS.embedding), registry))
    return names


async def collect_forever(stores: Stores) -> None:
    """Remove unused models, checking every quarter of the grace period (1 s to 5 min)."""
    pulls = stores.pulls
    if pulls is None or pulls.gc_grace <= 0:
        return
    interval = min(300.0, max(1.0, pulls.gc_grace / 4))
    while True:
        await asyncio.sleep(interval)
        try:
            used = await referenced(stores)
            for name in await pulls.collect(used):
                log.info("model %s removed from Ollama (unused)", name)
        except (*kube.KUBE_ERRORS, *MODEL_ERRORS) as error:
            # A failed sweep is tried again at the next interval.
            log.warning("removing unused models: %s", type(error).__name__)
