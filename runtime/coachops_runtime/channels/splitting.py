"""Splitting a text into parts a provider accepts, at paragraph, line or word boundaries."""

from __future__ import annotations


def split(text: str, limit: int) -> list[str]:
    """Parts of at most ``limit`` characters that join (with the whitespace dropped at the
    cuts) back to ``text``; cut at the last blank line, newline or space that keeps a part
    at least half full, else hard at the limit."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at >= limit // 2:
                cut = at
                break
        if cut == -1:
            parts.append(rest[:limit])
            rest = rest[limit:].lstrip()
            continue
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts
