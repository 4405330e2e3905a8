"""The embedding layer: similarity of a message's sentences to crisis exemplars.

Exemplar vectors are computed once per embedding model and kept for the life of the
process (one batch call to Ollama per model). A sentence is flagged when its cosine
similarity to the nearest crisis exemplar reaches ``THRESHOLD`` and beats its similarity
to the nearest benign exemplar by ``MARGIN``. Both values were chosen with
bench/safety_eval.py on all-MiniLM-L6-v2 (docs/runtime.md has the figures).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from coachops_runtime.ai.safety.exemplars import BENIGN, CRISIS
from coachops_runtime.ai.safety.normalize import sentences
from coachops_runtime.ai.safety.verdict import Category

THRESHOLD = 0.64
MARGIN = 0.03

Matrix = npt.NDArray[np.float32]


class Embeds(Protocol):
    """What the layer needs of an embedder (knowledge.embedding.Embedder fits)."""

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class Score:
    category: Category
    crisis: float  # similarity to the nearest crisis exemplar
    benign: float  # similarity to the nearest benign exemplar

    def flagged(self, threshold: float, margin: float) -> bool:
        return self.crisis >= threshold and self.crisis - self.benign >= margin


@dataclass(frozen=True)
class _Exemplars:
    crisis: Matrix
    categories: tuple[Category, ...]
    benign: Matrix


def _unit(vectors: list[list[float]]) -> Matrix:
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Matrix = matrix / np.maximum(norms, 1e-12)
    return unit


class ExemplarIndex:
    def __init__(self, *, threshold: float = THRESHOLD, margin: float = MARGIN) -> None:
        self.threshold = threshold
        self.margin = margin
        self._models: dict[str, _Exemplars] = {}
        self._lock = asyncio.Lock()

    async def _exemplars(self, embedder: Embeds, model: str) -> _Exemplars:
        cached = self._models.get(model)
        if cached is not None:
            return cached
        async with self._lock:  # one computation per model, even under concurrent checks
            cached = self._models.get(model)
            if cached is None:
                categories = tuple(c for c, texts in CRISIS.items() for _ in texts)
                texts = [t for group in CRISIS.values() for t in group]
                vectors = _unit(await embedder.embed(model, [*texts, *BENIGN]))
                cached = _Exemplars(vectors[: len(texts)], categories, vectors[len(texts) :])
                self._models[model] = cached
            return cached

    async def nearest(self, embedder: Embeds, model: str, text: str) -> Score | None:
        """The score of the message's most crisis-like sentence; None for empty text."""
        parts = sentences(text)
        if not parts:
            return None
        if len(parts) > 1:
            parts.append(text[:2000])
        exemplars = await self._exemplars(embedder, model)
        vectors = _unit(await embedder.embed(model, parts))
        crisis = vectors @ exemplars.crisis.T
        benign = (vectors @ exemplars.benign.T).max(axis=1)
        best: Score | None = None
        for row in range(len(parts)):
            column = int(crisis[row].argmax())
            score = Score(
                exemplars.categories[column], float(crisis[row, column]), float(benign[row])
            )
            if best is None or _rank(score, self) > _rank(best, self):
                best = score
        return best

    def flagged(self, score: Score | None) -> bool:
        return score is not None and score.flagged(self.threshold, self.margin)


def _rank(score: Score, index: ExemplarIndex) -> tuple[bool, float]:
    # A flagged sentence wins over an unflagged one; then the more crisis-like.
    return (score.flagged(index.threshold, index.margin), score.crisis)
