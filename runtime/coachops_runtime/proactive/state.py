"""The proactive settings and clock one app uses, made on first use and kept on the app
(a test puts its own clock there)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from coachops_runtime.proactive.clock import Clock
from coachops_runtime.proactive.settings import ProactiveSettings


@dataclass(frozen=True)
class Proactive:
    settings: ProactiveSettings
    clock: Clock


def proactive_of(request: Request) -> Proactive:
    state = request.app.state
    proactive = getattr(state, "proactive", None)
    if not isinstance(proactive, Proactive):
        settings = ProactiveSettings()
        proactive = Proactive(settings, settings.clock())
        state.proactive = proactive
    return proactive
