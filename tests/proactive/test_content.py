"""A check-in written by the program's model (real Ollama, the tiny chat model): the text
the model generated goes out, not the template; with Ollama stopped the template goes out
at the same minute."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg

from coachops_devstack.ollama import OllamaStack
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.content import ContentWriter
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from tests.ollama.conftest import (
    model_registry,
    ollama,
    ollama_client,
    ollama_stack,
    pulled_chat_model,
)
from tests.proactive.conftest import World

__all__ = ["model_registry", "ollama", "ollama_client", "ollama_stack", "pulled_chat_model"]

TEMPLATE = "Hi {name}, how did you sleep?"


async def test_the_model_writes_the_check_in_and_the_template_stands_in(
    world: World,
    runtime_settings: Settings,
    pool: asyncpg.Pool,
    ollama_stack: OllamaStack,
    pulled_chat_model: str,
) -> None:
    settings = runtime_settings.model_copy(update={"ollama_url": ollama_stack.base_url})
    proactive = ProactiveSettings(generation_timeout_seconds=60)
    writer = ContentWriter(settings, AiSettings(), proactive.generation_timeout_seconds)
    world.scheduler = ProactivePoller(pool, proactive, Engine(proactive, writer), world.clock)
    try:
        world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
        creator = await world.creator()
        program = await world.program(
            creator,
            {
                "checkIns": [
                    {
                        "name": "sleep",
                        "cron": "0 9 * * *",
                        "message": "Ask how they slept last night.",
                        "template": TEMPLATE,
                    }
                ],
                "quietHours": {"start": "00:00", "end": "00:00"},
            },
        )
        await world.tenants.owner(
            creator.creator_id,
            "UPDATE programs SET spec = jsonb_set(spec, '{model}', $2::jsonb)"
            " WHERE program_id = $1",
            program,
            json.dumps({"chat": ollama_stack.chat_model, "maxTokens": 16}),
        )
        user = await world.end_user(creator, program, name="Sam")
        await world.run_until(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
        (message,) = await world.sent_messages(user)
        assert message["body"].strip()
        assert message["body"] != "Hi Sam, how did you sleep?"  # written by the model

        ollama_stack.stop_ollama()
        try:
            await world.run_until(datetime(2026, 6, 2, 9, 0, tzinfo=UTC), step=timedelta(hours=1))
            second = (await world.sent_messages(user))[1]
            assert second["body"] == "Hi Sam, how did you sleep?"
            assert second["created_at"] == datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
        finally:
            await ollama_stack.start_ollama()
    finally:
        await writer.close()
