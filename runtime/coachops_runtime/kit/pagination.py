"""Cursor pagination: opaque cursors over a keyset, never offsets.

A cursor comes back from the client, so it is untrusted input: decoding accepts only what
``encode_keyset`` / ``encode_position`` write and only values PostgreSQL accepts (an aware
timestamp that converts to UTC within Python's and so PostgreSQL's range, a canonical
UUID, a non-negative int64 of ASCII digits). Anything else is a 400, never a database
error.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from coachops_runtime.kit.errors import BadRequest
from coachops_runtime.kit.text import Storable

T = TypeVar("T")
INT64_MAX = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_POSITION = re.compile(r"[0-9]{1,19}")
_MALFORMED = "invalid cursor: pass back a next_cursor of this endpoint unchanged"


# The ``cursor`` query parameter of every paged list.
CursorQuery = Annotated[Annotated[str, Field(max_length=500), Storable] | None, Query()]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as ``cursor`` for the next page; null on the last page."
    )


def _encode(*values: str) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_keyset(at: datetime, key: uuid.UUID) -> str:
    """The cursor after the row (``at``, ``key``); ``at`` must be timezone-aware."""
    return _encode(at.astimezone(UTC).isoformat(), str(key))


def encode_position(position: int) -> str:
    """The cursor after a row of an increasing integer key (a message id)."""
    return _encode(str(position))


def _decode(cursor: str, size: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except ValueError as error:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise BadRequest(_MALFORMED) from error
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) for v in values)
    ):
        raise BadRequest(_MALFORMED)
    return values


def decode_keyset(cursor: str) -> tuple[datetime, uuid.UUID]:
    """(timestamp in UTC, id) from ``encode_keyset``'s cursor; 400 for anything else."""
    at, key = _decode(cursor, 2)
    try:
        moment, ident = datetime.fromisoformat(at), uuid.UUID(key)
    except ValueError as error:
        raise BadRequest(_MALFORMED) from error
    if moment.tzinfo is None:
        raise BadRequest(_MALFORMED)
    try:
        # Year 1 with a positive offset, or 9999 with a negative one, has no UTC time.
        return moment.astimezone(UTC), ident
    except OverflowError as error:
        raise BadRequest("invalid cursor: its timestamp is out of range") from error


def decode_position(cursor: str) -> int:
    """The integer of ``encode_position``'s cursor; 400 for anything else."""
    (value,) = _decode(cursor, 1)
    if not _POSITION.fullmatch(value):
        raise BadRequest(_MALFORMED)
    position = int(value)
    if position > INT64_MAX:
        raise BadRequest("invalid cursor: its position is out of range")
    return position
