"""The creator's blocked topics, matched as whole words in the normalized message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from coachops_runtime.ai.safety.normalize import normalize

# Hiragana, katakana, CJK ideographs, Hangul: scripts written without spaces between words.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@lru_cache(maxsize=1024)
def _compiled(topic: str) -> re.Pattern[str] | None:
    words = normalize(topic).split()
    if not words:
        return None
    body = r"[\s-]+".join(re.escape(word) for word in words)
    if _UNSPACED.search(topic):
        return re.compile(body)
    # Whole words; a plural "s"/"es" still counts as the topic.
    return re.compile(rf"(?<!\w){body}(?:s|es)?(?!\w)")


def blocked_topic(normalized: str, topics: Iterable[str]) -> str | None:
    """The first of ``topics`` the (normalized) message mentions, as the creator wrote it."""
    for topic in topics:
        pattern = _compiled(topic)
        if pattern is not None and pattern.search(normalized):
            return topic
    return None
