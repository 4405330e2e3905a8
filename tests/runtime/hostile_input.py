"""Schemathesis hooks: generated requests also carry what PostgreSQL would refuse.

Loaded by ``st run`` through ``SCHEMATHESIS_HOOKS=tests.runtime.hostile_input`` (see
test_openapi.py). Schemathesis generates requests that fit the OpenAPI document; these
hooks then, in about half of the examples each, insert NUL or unpaired surrogates into one
string of a JSON body (NUL only into a form or multipart body), set a free-text query
parameter to text with NUL, put a cursor from ``hostile_cursors`` on operations that take
one, and insert NUL into a path parameter (a URL cannot carry a surrogate). The checks:
no 5xx, every answer as documented, and (``problem_carries_the_request_id``) every error a
problem with the request id of its X-Request-ID header.
"""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from hypothesis import strategies as st

from tests.runtime.strategies import UNSTORABLE, hostile_cursors, with_unstorable

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


@st.composite
def _spoil_one_string(draw: st.DrawFn, document: Any, alphabet: Any = UNSTORABLE) -> Any:
    """``document``, or in about half of the draws, with refused characters inserted into
    one of its strings."""
    paths = _strings(document)
    if not paths or not draw(st.booleans()):
        return document
    path = draw(st.sampled_from(paths))
    return _replace(document, path, draw(with_unstorable(_get(document, path), alphabet)))


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    # JSON escapes a surrogate; a form or multipart body is sent as UTF-8, which cannot
    # carry one (the client would fail before sending), so those get NUL only.
    media_types = {b.media_type for b in getattr(context.operation, "body", ())}
    if media_types <= {"application/json"}:
        return _spoil_one_string(body)
    return _spoil_one_string(body, st.just("\x00"))


def _text_parameters(context: Any) -> tuple[list[str], bool]:
    """The operation's free-text query parameters (strings without a format or enum), and
    whether it takes a cursor."""
    names, cursor = [], False
    for parameter in getattr(context.operation, "query", ()):
        schema = parameter.definition.get("schema", {})
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string" and not {"format", "enum"} & branch.keys():
                if parameter.name == "cursor":
                    cursor = True
                else:
                    names.append(parameter.name)
                break
    return names, cursor


@st.composite
def _hostile_query(
    draw: st.DrawFn, query: dict[str, Any], names: list[str], takes_cursor: bool
) -> dict[str, Any]:
    query = dict(query)
    if bool(names) and draw(st.booleans()):  # also when the generator left the parameter out
        query[draw(st.sampled_from(names))] = draw(with_unstorable("text", st.just("\x00")))
    if takes_cursor and draw(st.booleans()):
        query["cursor"] = draw(hostile_cursors())
    return query


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> st.SearchStrategy[Any]:
    names, takes_cursor = _text_parameters(context)
    return _hostile_query(query if isinstance(query, dict) else {}, names, takes_cursor)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    return _spoil_one_string(path_parameters, st.just("\x00"))


@schemathesis.check
def problem_carries_the_request_id(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer is a problem whose request_id is its X-Request-ID header (the one
    in the log lines), 500s included."""
    if response.status_code < 400:
        return None
    # schemathesis' headers: lower-case names, a list of values each.
    request_id = response.headers.get("x-request-id", [""])[0]
    if not request_id:
        raise AssertionError(f"{response.status_code} without an X-Request-ID header")
    if "problem+json" in response.headers.get("content-type", [""])[0]:
        body = response.json()
        if body.get("request_id") != request_id:
            raise AssertionError(
                f"problem request_id {body.get('request_id')!r} is not the header's {request_id!r}"
            )
    return None
