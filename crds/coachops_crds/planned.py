"""Which CRD fields describe behaviour that is not built yet.

``kubectl explain`` prints the field descriptions, so they must say what happens today.
A field whose behaviour is planned says so with the word "planned" in its description,
and is listed here; tests/crds checks that the descriptions, these sets and the code of
the operator and the runtime agree.

Paths are what ``kubectl explain`` takes after the kind, e.g. ``spec.limits``; an array's
items share the array's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from coachops_crds import constants as c

PLANNED: Final[Mapping[str, frozenset[str]]] = {
    # Nothing in the operator or the runtime acts on these yet; each covers its subtree.
    c.CREATOR_KIND: frozenset(),
    c.PROGRAM_KIND: frozenset(),
}

PARTLY_PLANNED: Final[Mapping[str, frozenset[str]]] = {
    # Acted on in part; the description says which part is planned. Exact paths only.
    c.CREATOR_KIND: frozenset(),
    c.PROGRAM_KIND: frozenset(
        {
            "spec.channels.enabled",
        }
    ),
}


def is_planned(kind: str, path: str) -> bool:
    """Whether the field at ``path`` of ``kind`` describes behaviour that is planned."""
    if path in PARTLY_PLANNED.get(kind, frozenset()):
        return True
    return any(path == root or path.startswith(root + ".") for root in PLANNED.get(kind, ()))
