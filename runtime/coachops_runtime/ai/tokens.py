"""Token counts by a documented estimate, and text cut to a token budget.

The estimate is ``ceil(utf8_bytes / 4)``, at least one token per word: byte-pair
tokenizers of the models in use average close to four bytes of English per token, and a
word is never less than a token. It errs high for English and for most scripts that take
two or three bytes per character, so a budget built on it leaves headroom. The provider
reports the real counts after generation (``prompt_tokens``/``completion_tokens``).
"""

from __future__ import annotations

import math


def estimate(text: str) -> int:
    if not text:
        return 0
    return max(math.ceil(len(text.encode("utf-8")) / 4), len(text.split()))


def fit(text: str, budget: int, *, keep: str = "head") -> str:
    """``text`` cut (at a word boundary where possible) so its estimate fits ``budget``;
    ``keep='tail'`` keeps the end instead of the start."""
    if budget <= 0:
        return ""
    if estimate(text) <= budget:
        return text
    budget -= 1  # room for the ellipsis
    low, high = 0, len(text)
    while low < high:  # the longest prefix (or suffix) that fits
        middle = (low + high + 1) // 2
        piece = text[:middle] if keep == "head" else text[len(text) - middle :]
        if estimate(piece) <= budget:
            low = middle
        else:
            high = middle - 1
    piece = text[:low] if keep == "head" else text[len(text) - low :]
    if keep == "head" and " " in piece:
        piece = piece.rsplit(" ", 1)[0]
    elif keep == "tail" and " " in piece:
        piece = piece.split(" ", 1)[1]
    return piece + " …" if keep == "head" else "… " + piece
