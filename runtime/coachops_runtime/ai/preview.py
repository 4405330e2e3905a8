"""The creator's preview: the program's coach answers one message, streamed straight from
the provider in the API process; nothing is stored and no quota is charged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coachops_runtime.ai.models import ProgramModel, Providers
from coachops_runtime.ai.prompt import Persona, PromptParts, Source, assemble
from coachops_runtime.ai.providers import ChatRequest, ProviderError, Usage
from coachops_runtime.ai.repository import ReplyRepository
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.ai.stream import DONE, FALLBACK, TOKEN
from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.container import Runtime
from coachops_runtime.kit.errors import NotFound
from coachops_runtime.knowledge.embedding import Embedder, EmbeddingError
from coachops_runtime.knowledge.retrieval import retrieve
from coachops_runtime.knowledge.vectors import VectorStore, VectorStoreError


@dataclass(frozen=True)
class PreparedPreview:
    model: ProgramModel
    sources: list[Source]
    spec: dict[str, Any]
    message: str


async def prepare_preview(
    runtime: Runtime, context: CreatorContext, name: str, message: str
) -> PreparedPreview:
    """The program and its retrieved knowledge, read in the request's transaction."""
    program = await ReplyRepository(context.session).program(name)
    if program is None:
        raise NotFound("no such program")
    settings, ai = runtime.settings, AiSettings()
    sources: list[Source] = []
    if settings.chroma_url and settings.ollama_url:
        store = VectorStore(settings.chroma_url)
        embedder = Embedder(settings.ollama_url, registry=settings.model_registry)
        try:
            passages = await retrieve(
                context.session,
                store,
                embedder,
                program["program_id"],
                message,
                top_k=ai.retrieval_top_k,
                max_distance=ai.retrieval_max_distance,
            )
            sources = [
                Source(n, p.source, p.page, p.section, p.chunk_id, p.text, p.distance)
                for n, p in enumerate(passages, start=1)
            ]
        except (EmbeddingError, VectorStoreError):
            sources = []  # the preview answers without knowledge, as a reply would
        finally:
            await store.close()
            await embedder.close()
    spec = program["spec"] or {}
    return PreparedPreview(
        ProgramModel.from_spec(spec, program["provider_key"]), sources, spec, message
    )


async def preview_events(
    runtime: Runtime, prepared: PreparedPreview
) -> AsyncIterator[tuple[str, Any]]:
    ai = AiSettings()
    persona = prepared.spec.get("persona") or {}
    # No end user here: the local time is the program's zone for end users without one.
    proactive = prepared.spec.get("proactive") or {}
    prompt = assemble(
        PromptParts(
            persona=Persona(
                name=str(persona.get("name", "Coach")),
                instructions=str(persona.get("instructions", "")),
                tone=str(persona.get("tone", "warm")),
                language=str(persona.get("language", "en")),
            ),
            display_name="",
            time_zone=str(proactive.get("timeZone") or "UTC"),
            goals=[],
            summary="",
            sources=prepared.sources,
            history=[],
            message=prepared.message,
            now=datetime.now(UTC),
        ),
        context_tokens=ai.context_tokens,
        max_tokens=prepared.model.max_tokens,
    )
    providers = Providers(runtime.settings, ai)
    request = ChatRequest(
        providers.model_name(prepared.model),
        prompt.messages,
        prepared.model.temperature,
        prepared.model.max_tokens,
    )
    usage = Usage()
    try:
        async for piece in providers.for_model(prepared.model).stream(request, usage):
            yield TOKEN, piece
    except ProviderError:
        yield FALLBACK, {"text": prepared.model.fallback_text}
        return
    finally:
        await providers.close()
    yield (
        DONE,
        {
            "citations": [source.citation() for source in prompt.sources],
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        },
    )
