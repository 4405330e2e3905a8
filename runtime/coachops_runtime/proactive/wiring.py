"""The scheduler poller with its engine and content writer, as the worker and
``python -m coachops_runtime.proactive`` run it."""

from __future__ import annotations

import asyncpg

from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.content import ContentWriter
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings


def scheduler(
    settings: Settings, pool: asyncpg.Pool, proactive: ProactiveSettings, ai: AiSettings
) -> ProactivePoller:
    writer = ContentWriter(settings, ai, proactive.generation_timeout_seconds)
    return ProactivePoller(pool, proactive, Engine(proactive, writer), proactive.clock())
