"""Cursor pagination: opaque cursors over a keyset, never offsets."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from coachops_runtime.kit.errors import BadRequest

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as ``cursor`` for the next page; null on the last page."
    )


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keyset(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A (timestamp, id) cursor, validated."""
    at, key = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), uuid.UUID(key)
    except ValueError as error:
        raise BadRequest("invalid cursor") from error


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest("invalid cursor") from error
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) for v in values)
    ):
        raise BadRequest("invalid cursor")
    return values
