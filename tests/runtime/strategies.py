"""Hypothesis strategies for input PostgreSQL would refuse, shared by the cursor tests, the
API tests and the schemathesis hooks (tests/runtime/hostile_input.py).

The classes, not examples of them: text with NUL (U+0000) or unpaired surrogates at any
position; timestamps anywhere in Python's range, at its very ends too, with any UTC offset
or none; integers of any size; strings of Unicode digits that ``str.isdigit()`` accepts
and ``int()`` may not.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

# What PostgreSQL's text types (NUL) and asyncpg's UTF-8 encoder (surrogates) refuse.
UNSTORABLE = st.just("\x00") | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


def refused(text: str) -> bool:
    """Whether PostgreSQL would refuse ``text`` as the server reads it from JSON (where a
    high surrogate followed by a low one is one valid character)."""
    received = json.loads(json.dumps(text))
    try:
        received.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in received


@st.composite
def with_unstorable(draw: st.DrawFn, base: str, alphabet: Any = UNSTORABLE) -> str:
    """``base`` with one to three refused characters inserted anywhere (an e-mail address
    keeps its shape, so the character gets past patterns to the storage check)."""
    text = base
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(alphabet) + text[at:]
    assume(refused(text))  # two inserted surrogates may have made a valid pair
    return text


def unstorable_text() -> st.SearchStrategy[str]:
    return st.text(max_size=40).flatmap(with_unstorable)


# Every fixed UTC offset Python allows (strictly less than a day either way), or none.
OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)
ZONES: st.SearchStrategy[tzinfo | None] = st.none() | st.just(UTC) | OFFSETS


def any_datetimes() -> st.SearchStrategy[datetime]:
    """Anywhere from year 1 to 9999, weighted towards both ends, any offset or none."""
    naive = st.one_of(
        st.datetimes(),
        st.datetimes(max_value=datetime(1, 1, 2)),
        st.datetimes(min_value=datetime(9999, 12, 30)),
    )
    return st.tuples(naive, ZONES).map(lambda pair: pair[0].replace(tzinfo=pair[1]))


def digit_strings() -> st.SearchStrategy[str]:
    """Strings of characters str.isdigit() accepts: ASCII, other scripts' digits, and the
    superscripts and circled digits ("²", "①") that int() refuses."""
    digits = st.characters(categories=["Nd", "No"]).filter(str.isdigit)
    not_for_int = st.characters(categories=["No"]).filter(str.isdigit)
    return st.one_of(
        st.text(alphabet=digits, min_size=1, max_size=24),
        st.tuples(st.text(alphabet=digits, max_size=5), not_for_int).map("".join),
    )


def any_integers() -> st.SearchStrategy[int]:
    """Any size, weighted towards the edges of int64 (a bigint column)."""
    edge = 2**63
    return st.one_of(
        st.integers(),
        st.integers(min_value=edge - 100, max_value=edge + 100),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.integers(min_value=-edge - 100, max_value=-edge + 100),
    )


def cursor_values() -> st.SearchStrategy[str]:
    return st.one_of(
        any_datetimes().map(lambda moment: moment.isoformat()),
        st.uuids().map(str),
        any_integers().map(str),
        digit_strings(),
        unstorable_text(),
        st.text(max_size=40),
    )


def encoded(document: Any) -> str:
    raw = json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hostile_cursors() -> st.SearchStrategy[str]:
    """Cursors a client could send: well-formed ones holding any values, other JSON, and
    strings that are not base64 at all."""
    return st.one_of(
        st.lists(cursor_values(), max_size=3).map(encoded),
        st.tuples(any_datetimes(), st.uuids()).map(
            lambda v: encoded([v[0].isoformat(), str(v[1])])
        ),
        any_integers().map(lambda n: encoded([str(n)])),
        digit_strings().map(lambda d: encoded([d])),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=5,
        ).map(encoded),
        st.text(max_size=60),
    )
