"""The storage check: exactly the text PostgreSQL (via asyncpg) cannot store is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coachops_runtime.kit.text import refuse_unstorable, storable_tree
from tests.runtime.strategies import UNSTORABLE

# Any character, with NUL and surrogates (which st.characters() leaves out) mixed in.
# (A list joined, not st.text: text() would merge the alphabets and drop surrogates again.)
ANY_TEXT = st.lists(st.characters() | UNSTORABLE, max_size=30).map("".join)


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@given(ANY_TEXT)
def test_refused_exactly_when_postgresql_could_not_store_it(text: str) -> None:
    if _storable(text):
        assert refuse_unstorable(text) is text
    else:
        with pytest.raises(ValueError, match=r"NUL|surrogate"):
            refuse_unstorable(text)


def test_the_message_names_the_character() -> None:
    with pytest.raises(ValueError, match=r"NUL character \(U\+0000\)"):
        refuse_unstorable("a\x00b")
    with pytest.raises(ValueError, match=r"unpaired surrogate \(U\+DC80\)"):
        refuse_unstorable("é\udc80")
    assert refuse_unstorable("Zoë 😀 ²") == "Zoë 😀 ²"


def test_a_document_is_checked_everywhere_and_the_path_named() -> None:
    good = {"persona": {"name": "Robin", "tags": ["a", 1, None, {"k": "v"}]}, "n": 3}
    assert storable_tree(good) is good
    with pytest.raises(ValueError, match=r"^persona\.tags\[3\]\.k: must not contain the NUL"):
        storable_tree({"persona": {"name": "Robin", "tags": ["a", 1, None, {"k": "\x00"}]}})
    with pytest.raises(ValueError, match=r"^persona: a key must not contain an unpaired"):
        storable_tree({"persona": {"\ud800": "x"}})
    with pytest.raises(ValueError, match=r"^value: must not contain the NUL"):
        storable_tree("\x00")
