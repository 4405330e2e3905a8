"""Schemathesis hooks: generated requests also carry what PostgreSQL would refuse.

Loaded by ``st run`` through ``SCHEMATHESIS_HOOKS=tests.runtime.hostile_input`` (see
test_openapi.py). Schemathesis generates requests that fit the OpenAPI document; these
hooks then, in part of the examples, insert NUL or unpaired surrogates into one string of
the JSON body, NUL into one string of the query or path (a URL cannot carry a surrogate),
and replace a ``cursor`` with one from ``hostile_cursors``. The checks stay the same: no
5xx, and every answer as documented.
"""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from hypothesis import strategies as st

from tests.runtime.strategies import hostile_cursors, with_unstorable

Path = tuple[str | int, ...]


def _strings(value: Any, path: Path = ()) -> list[Path]:
    """Where the strings of a JSON document are."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _strings(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _strings(item, (*path, index))]
    return []


def _replace(document: Any, path: Path, value: str) -> Any:
    if not path:
        return value
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _get(document: Any, path: Path) -> Any:
    for step in path:
        document = document[step]
    return document


def _spoil_one_string(document: Any, alphabet: Any = None) -> st.SearchStrategy[Any]:
    paths = _strings(document)
    if not paths:
        return st.just(document)
    spoilt = st.sampled_from(paths).flatmap(
        lambda path: (
            with_unstorable(_get(document, path))
            if alphabet is None
            else with_unstorable(_get(document, path), alphabet)
        ).map(lambda text: _replace(document, path, text))
    )
    return st.one_of(st.just(document), spoilt)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return _spoil_one_string(body)


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> st.SearchStrategy[Any]:
    if not isinstance(query, dict):
        return st.just(query)
    spoilt = _spoil_one_string(query, st.just("\x00"))
    if "cursor" not in query:
        return spoilt
    with_cursor = hostile_cursors().map(lambda cursor: {**query, "cursor": cursor})
    return st.one_of(spoilt, with_cursor)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    return _spoil_one_string(path_parameters, st.just("\x00"))
