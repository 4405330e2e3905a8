"""What the safety check decides about one inbound message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["self_harm", "abuse", "medical_emergency"]
Layer = Literal["pattern", "embedding"]
CATEGORIES: tuple[Category, ...] = ("self_harm", "abuse", "medical_emergency")


@dataclass(frozen=True)
class Verdict:
    """``ok``, ``crisis`` (with its category and the layer that caught it) or
    ``blocked_topic`` (with the creator's topic). ``embedding_checked`` is False when the
    embedding layer could not run (Ollama unreachable): the patterns alone decided."""

    kind: Literal["ok", "crisis", "blocked_topic"]
    category: Category | None = None
    topic: str | None = None
    layer: Layer | None = None
    score: float | None = None
    embedding_checked: bool = True

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


OK = Verdict("ok")
