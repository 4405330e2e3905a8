"""One canonical form of a message for the pattern and topic layers."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_SPACE = re.compile(r"\s+")
# A sentence ends at these (ASCII and CJK); a line break ends one too.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f;])\s*|\n+")


def normalize(text: str) -> str:
    """NFKC (full-width Latin becomes ASCII), case-folded, typographic apostrophes made
    ASCII, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).casefold()
    return _SPACE.sub(" ", folded).strip()


def sentences(text: str, *, limit: int = 12, max_chars: int = 400) -> list[str]:
    """The message's first ``limit`` non-empty sentences, each cut at ``max_chars``: a crisis
    sentence inside a long message is embedded on its own, not diluted by the rest."""
    parts = [part.strip()[:max_chars] for part in _SENTENCE_END.split(text)]
    return [part for part in parts if part][:limit]
