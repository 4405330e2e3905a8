"""Text PostgreSQL can store: the one check every text input passes before it is used.

PostgreSQL's text types cannot hold NUL (U+0000), and asyncpg cannot encode an unpaired
surrogate (U+D800-U+DFFF) as UTF-8: either would reach the database as an error, and the
client would see a 500. So every string field of a request schema and every string query
parameter carries ``Storable`` (``Text`` is ``str`` with it; constrained aliases put it
after their ``Field`` so that length and pattern errors keep pydantic's wording), and JSON
documents that pass through whole (program specs) carry ``StorableTree``. A test walks
every route and fails on a string input that has neither.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


def refuse_unstorable(value: str) -> str:
    """``value`` unchanged, or a ValueError that names what PostgreSQL could not store."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            code = ord(value[error.start])
            raise ValueError(
                f"must not contain an unpaired surrogate (U+{code:04X}); send valid UTF-8"
            ) from None
    return value


Storable = AfterValidator(refuse_unstorable)
Text = Annotated[str, Storable]


def storable_tree(value: Any, path: str = "") -> Any:
    """A JSON document unchanged, or a ValueError naming the first string (key or value)
    that PostgreSQL could not store, by its path."""
    if isinstance(value, str):
        try:
            refuse_unstorable(value)
        except ValueError as error:
            raise ValueError(f"{path or 'value'}: {error}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                try:
                    refuse_unstorable(key)
                except ValueError as error:
                    raise ValueError(f"{path or 'value'}: a key {error}") from None
            storable_tree(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            storable_tree(item, f"{path}[{index}]")
    return value


StorableTree = BeforeValidator(storable_tree)
