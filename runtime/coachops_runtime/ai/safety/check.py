"""``assess``: the layered check of one inbound message, before any generation."""

from __future__ import annotations

import logging

from coachops_runtime.ai.safety.normalize import normalize
from coachops_runtime.ai.safety.patterns import match
from coachops_runtime.ai.safety.program import ProgramSafety
from coachops_runtime.ai.safety.similarity import Embeds, ExemplarIndex
from coachops_runtime.ai.safety.topics import blocked_topic
from coachops_runtime.ai.safety.verdict import OK, Verdict
from coachops_runtime.knowledge.embedding import EmbeddingError

log = logging.getLogger("coachops.safety")

# Exemplar vectors are cached per embedding model for the life of the process.
INDEX = ExemplarIndex()


async def assess(
    text: str, program: ProgramSafety, embedder: Embeds, *, index: ExemplarIndex = INDEX
) -> Verdict:
    """Crisis language first (patterns, then embedding similarity with the program's
    embedding model), then the program's blocked topics. When the embedding layer
    cannot run, the patterns decide alone (``embedding_checked`` False) rather than
    holding the reply back. The text is never logged."""
    normalized = normalize(text)
    hit = match(normalized)
    if hit is not None:
        return Verdict("crisis", hit.category, layer="pattern")
    checked = True
    try:
        score = await index.nearest(embedder, program.embedding_model, text)
    except EmbeddingError as error:
        checked = False
        log.warning(
            "safety embedding layer unavailable; patterns only",
            extra={"program": program.program_name, "reason": error.reason},
        )
    else:
        if score is not None and index.flagged(score):
            return Verdict("crisis", score.category, layer="embedding", score=score.crisis)
    topic = blocked_topic(normalized, program.safety.blocked_topics)
    if topic is not None:
        return Verdict("blocked_topic", topic=topic, layer="pattern", embedding_checked=checked)
    return OK if checked else Verdict("ok", embedding_checked=False)
