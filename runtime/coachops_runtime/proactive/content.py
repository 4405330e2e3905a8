"""What a proactive message says: written by the program's model from the check-in's
prompt, the persona, the conversation's memory and the end user's active goals; when the
provider fails or does not finish within ``generation_timeout_seconds``, or the check-in
asks for its template, the template text, so the message still goes out on time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coachops_runtime.ai.models import ProgramModel, Providers
from coachops_runtime.ai.prompt import Persona, PromptParts, assemble
from coachops_runtime.ai.providers import ChatRequest, ProviderError, Usage
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.goals.repository import active_goals
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.repository import ProactiveRepository
from coachops_runtime.proactive.targets import Occurrence, Target

log = logging.getLogger("coachops.worker.proactive")


@dataclass(frozen=True)
class Content:
    text: str
    source: str  # "ai" or "template"


def _persona(spec: Mapping[str, Any]) -> Persona:
    persona = spec.get("persona") or {}
    return Persona(
        name=str(persona.get("name", "Coach")),
        instructions=str(persona.get("instructions", "")),
        tone=str(persona.get("tone", "warm")),
        language=str(persona.get("language", "en")),
    )


class ContentWriter:
    def __init__(self, settings: Settings, ai: AiSettings, timeout: float) -> None:
        self.ai = ai
        self.timeout = timeout
        self.providers = Providers(settings, ai)

    async def close(self) -> None:
        await self.providers.close()

    async def write(
        self,
        repo: ProactiveRepository,
        row: Any,
        target: Target,
        occurrence: Occurrence,
        now: datetime,
    ) -> Content:
        template = Content(target.template(occurrence, row["display_name"]), "template")
        if not target.uses_ai:
            return template
        try:
            async with asyncio.timeout(self.timeout):
                text = await self._generate(repo.session, repo, row, target, occurrence, now)
                text = text.strip()
        except (ProviderError, TimeoutError) as error:
            log.warning(
                "proactive message from its template: the provider did not answer",
                extra={"schedule_id": row["schedule_id"], "error": type(error).__name__},
            )
            return template
        return Content(text, "ai") if text else template

    async def _generate(
        self,
        session: Session,
        repo: ProactiveRepository,
        row: Any,
        target: Target,
        occurrence: Occurrence,
        now: datetime,
    ) -> str:
        spec: Mapping[str, Any] = row["spec"]
        model = ProgramModel.from_spec(spec)
        goals = await active_goals(session, row["end_user_id"], row["program_id"])
        prompt = assemble(
            PromptParts(
                persona=_persona(spec),
                display_name=row["display_name"],
                time_zone=row["time_zone"],
                goals=[g.title for g in goals],
                summary=await repo.summary(row["conversation_id"]),
                sources=[],
                history=[],
                message=target.prompt(occurrence),
                now=now,
            ),
            context_tokens=self.ai.context_tokens,
            max_tokens=model.max_tokens,
        )
        request = ChatRequest(
            model=self.providers.model_name(model),
            messages=prompt.messages,
            temperature=model.temperature,
            max_tokens=model.max_tokens,
        )
        provider = self.providers.for_model(model)
        pieces = [piece async for piece in provider.stream(request, Usage())]
        return "".join(pieces)
