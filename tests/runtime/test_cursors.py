"""Cursors: what the runtime encodes decodes to the same values, and whatever a client
sends decodes to values PostgreSQL accepts or is refused with a 400."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachops_devstack.stack import Stack
from coachops_runtime.kit.errors import BadRequest
from coachops_runtime.kit.pagination import (
    INT64_MAX,
    decode_keyset,
    decode_position,
    encode_keyset,
    encode_position,
)
from tests.runtime.strategies import OFFSETS, encoded, hostile_cursors

# Aware datetimes whose UTC time exists: what asyncpg hands the runtime, in any zone.
STORED = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS
)


@given(STORED, st.uuids())
def test_a_keyset_cursor_round_trips(at: datetime, key: uuid.UUID) -> None:
    decoded_at, decoded_key = decode_keyset(encode_keyset(at, key))
    assert decoded_at == at
    assert decoded_at.utcoffset() == timedelta(0)
    assert decoded_key == key


@given(st.integers(min_value=0, max_value=INT64_MAX))
def test_a_position_cursor_round_trips(position: int) -> None:
    assert decode_position(encode_position(position)) == position


@given(hostile_cursors())
def test_a_keyset_cursor_from_a_client_is_valid_or_a_400(cursor: str) -> None:
    try:
        at, key = decode_keyset(cursor)
    except BadRequest:
        return  # a 400 problem (BadRequest's status)
    assert at.utcoffset() == timedelta(0)
    assert isinstance(key, uuid.UUID)


@given(hostile_cursors())
def test_a_position_cursor_from_a_client_is_valid_or_a_400(cursor: str) -> None:
    try:
        position = decode_position(cursor)
    except BadRequest:
        return
    assert 0 <= position <= INT64_MAX


@pytest.mark.parametrize(
    ("cursor", "decode"),
    [
        # The shapes an attack found (the classes above generate them too).
        (encoded(["0001-01-01T00:00:00+01:00", str(uuid.UUID(int=1))]), decode_keyset),
        (encoded(["9999-12-31T23:59:59-01:00", str(uuid.UUID(int=1))]), decode_keyset),
        (encoded(["2026-01-01T00:00:00", str(uuid.UUID(int=1))]), decode_keyset),  # naive
        (encoded([str(2**64)]), decode_position),
        (encoded(["²"]), decode_position),
        (encoded(["-1"]), decode_position),
    ],
)
def test_values_postgresql_would_refuse_are_a_400(
    cursor: str, decode: Callable[[str], object]
) -> None:
    with pytest.raises(BadRequest, match="invalid cursor"):
        decode(cursor)


@pytest.fixture(scope="module")
async def postgres(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(stack.postgres.dsn_for("postgres"))
    yield connection
    await connection.close()


@settings(max_examples=300, deadline=None)
@given(cursor=hostile_cursors())
async def test_what_a_cursor_decodes_to_postgresql_accepts(
    postgres: asyncpg.Connection, cursor: str
) -> None:
    """The decoded values go through asyncpg's encoders to PostgreSQL as the repositories
    send them: a 400 or a value the database takes, never a database error."""
    try:
        at, key = decode_keyset(cursor)
    except BadRequest:
        pass
    else:
        row = await postgres.fetchrow("SELECT $1::timestamptz AS at, $2::uuid AS key", at, key)
        assert row is not None
        assert (row["at"], row["key"]) == (at, key)
    try:
        position = decode_position(cursor)
    except BadRequest:
        return
    assert await postgres.fetchval("SELECT $1::bigint", position) == position
