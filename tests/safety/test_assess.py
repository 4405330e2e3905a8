"""``assess`` with the embedding layer on a real Ollama (all-MiniLM-L6-v2)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from coachops_crds.models import Safety
from coachops_devstack.ollama import OllamaStack
from coachops_runtime.ai.safety import ProgramSafety, assess
from coachops_runtime.ai.safety.similarity import ExemplarIndex
from coachops_runtime.knowledge.embedding import Embedder


class Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.texts = 0

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return await self.embedder.embed(model, texts)


@pytest.fixture
async def embedder(ollama: str) -> AsyncIterator[Counting]:
    real = Embedder(ollama)
    try:
        yield Counting(real)
    finally:
        await real.close()


@pytest.fixture
def program(ollama_stack: OllamaStack) -> ProgramSafety:
    if not ollama_stack.embedding_is_minilm:
        pytest.skip(f"random fallback embedding model: {ollama_stack.embedding.source}")
    return ProgramSafety(
        "prog",
        Safety(blocked_topics=["politics", "crypto"]),
        embedding_model=ollama_stack.embedding_model,
    )


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I want to kill myself", "self_harm"),
        ("Ich will mich umbringen", "self_harm"),
        ("Mi marido me pega", "abuse"),
        ("Je crois que je fais une crise cardiaque", "medical_emergency"),
        ("息ができない", "medical_emergency"),
    ],
)
async def test_pattern_hits(
    text: str, category: str, program: ProgramSafety, embedder: Counting
) -> None:
    verdict = await assess(text, program, embedder, index=ExemplarIndex())
    assert (verdict.kind, verdict.category, verdict.layer) == ("crisis", category, "pattern")
    assert embedder.texts == 0  # a pattern hit needs no embedding


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I can't take it anymore, I want everything to stop for good", "self_harm"),
        ("Everything feels pointless and I want my life to be over", "self_harm"),
        ("My husband is violent and I am afraid of him", "abuse"),
        ("I collapsed at the gym and my friend is not breathing", "medical_emergency"),
    ],
)
async def test_paraphrases_caught_by_the_embedding_layer_only(
    text: str, category: str, program: ProgramSafety, embedder: Counting
) -> None:
    verdict = await assess(text, program, embedder, index=ExemplarIndex())
    assert (verdict.kind, verdict.category, verdict.layer) == ("crisis", category, "embedding")
    assert verdict.score is not None
    assert verdict.score >= ExemplarIndex().threshold


@pytest.mark.parametrize(
    "text",
    [
        "This workout is killing me",
        "I'm dying to try the new protein pancakes",
        "I want to lose 5 kg before my wedding, can you help me plan?",
        "My legs are dead after leg day but I feel proud",
        "Ich möchte dreimal pro Woche laufen gehen",
        "Quiero dormir mejor y comer más verduras",
        "I had a stressful day at work. Then I went for a run. Now I feel much better!",
    ],
)
async def test_benign_coaching_text_passes(
    text: str, program: ProgramSafety, embedder: Counting
) -> None:
    verdict = await assess(text, program, embedder, index=ExemplarIndex())
    assert verdict.ok, verdict
    assert verdict.embedding_checked


async def test_blocked_topic_gets_a_refusal_verdict(
    program: ProgramSafety, embedder: Counting
) -> None:
    verdict = await assess("What do you think about Crypto?", program, embedder)
    assert (verdict.kind, verdict.topic) == ("blocked_topic", "crypto")
    # Crisis wins over a blocked topic.
    crisis = await assess("politics makes me want to kill myself", program, embedder)
    assert crisis.kind == "crisis"


async def test_exemplar_vectors_are_computed_once_per_model(
    program: ProgramSafety, embedder: Counting
) -> None:
    index = ExemplarIndex()
    await assess("How do I build a morning routine?", program, embedder, index=index)
    first = embedder.texts
    await assess("What should I eat after training?", program, embedder, index=index)
    assert embedder.texts - first == 1  # only the message's one sentence


async def test_without_ollama_the_patterns_decide(ollama_stack: OllamaStack) -> None:
    program = ProgramSafety("prog", embedding_model=ollama_stack.embedding_model)
    unreachable = Embedder("http://127.0.0.1:9", timeout=2)
    try:
        hit = await assess("I want to kill myself", program, unreachable, index=ExemplarIndex())
        assert (hit.kind, hit.layer) == ("crisis", "pattern")
        unsure = await assess(
            "Everything feels pointless and I want my life to be over",
            program,
            unreachable,
            index=ExemplarIndex(),
        )
        assert unsure.ok
        assert not unsure.embedding_checked
    finally:
        await unreachable.close()
