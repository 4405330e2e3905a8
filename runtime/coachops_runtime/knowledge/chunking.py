"""Sections to overlapping chunks with semchunk, each keeping where it came from.

Chunks never straddle two sections, so each has one page (PDF) or heading. Offsets count
characters of the document's extracted text: its sections joined by a blank line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from semchunk.semchunk import Chunker, chunkerify

from coachops_runtime.knowledge.parsing import Section

SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # character offsets in the extracted text, end exclusive
    end: int
    page: int | None
    section: str


def _words(text: str) -> int:
    # A word count stands in for tokens: cheap, and the embedding model truncates anyway.
    return len(text.split())


@lru_cache(maxsize=8)
def _chunker(size: int) -> Chunker:
    return chunkerify(_words, size)


def chunk(sections: Sequence[Section], *, words: int, overlap: float) -> list[Chunk]:
    """Chunks of at most ``words`` words, neighbours sharing ``overlap`` of a chunk."""
    chunker = _chunker(words)
    chunks: list[Chunk] = []
    base = 0
    for section in sections:
        # One text with offsets=True gives (texts, spans); semchunk's return type covers
        # every way of calling it.
        texts, spans = cast(
            tuple[list[str], list[tuple[int, int]]],
            chunker(section.text, offsets=True, overlap=overlap or None),
        )
        for text, (start, end) in zip(texts, spans, strict=True):
            if text.strip():
                chunks.append(
                    Chunk(len(chunks), text, base + start, base + end, section.page, section.title)
                )
        base += len(section.text) + len(SEPARATOR)
    return chunks
