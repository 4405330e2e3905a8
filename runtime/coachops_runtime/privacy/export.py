"""The archive of everything held about one end user: one JSON document, optionally zipped.

Rows come from every table of ``person.PERSON_TABLES`` (the consent history through
``ConsentRepository.history_by_end_user``, the consent module's own reader) and, so that
a store added later is never left out, from any other table the runtime can read that
has an ``end_user_id`` column; vectors from the creator's Chroma database
(``stores.PersonVectors``). The tables' rows are read in one repeatable-read snapshot, so
they are consistent with each other; progress (rows read / rows counted) is reported as
it goes.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from coachops_runtime.consent.repository import ConsentRepository
from coachops_runtime.kit.db import Session, bind_tenant
from coachops_runtime.privacy.person import NOT_PERSONAL, PERSON_TABLES, PersonTable
from coachops_runtime.privacy.repository import tenant_session
from coachops_runtime.privacy.stores import PersonVectors

FORMAT = "coachops.export/1"
BATCH = 500

Progress = Callable[[int, int], Awaitable[None]]
Reader = Callable[[Session, uuid.UUID], Awaitable[list[Any]]]


async def _consent_history(session: Session, end_user_id: uuid.UUID) -> list[Any]:
    return await ConsentRepository(session).history_by_end_user(end_user_id)


# Sections another module reads for us, in its own tenant-bound transaction.
READERS: dict[str, Reader] = {"consent_events": _consent_history}

# Tables with an end_user_id column the runtime may read, in the current schema.
_DISCOVER = """
    SELECT c.table_name::text AS table_name FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND c.column_name = 'end_user_id'
      AND t.table_type = 'BASE TABLE'
      AND has_table_privilege(format('%I.%I', c.table_schema, c.table_name), 'SELECT')
    ORDER BY 1
"""


_READABLE = """
    SELECT tablename::text AS name FROM pg_tables
    WHERE schemaname = current_schema()
      AND has_table_privilege(format('%I.%I', schemaname, tablename), 'SELECT')
"""


async def person_tables(connection: Any) -> list[PersonTable]:
    """The registry's tables that exist, then any other readable table naming end users."""
    readable = {row["name"] for row in await connection.fetch(_READABLE)}
    known = {entry.table for entry in PERSON_TABLES} | NOT_PERSONAL
    extra = [
        PersonTable(row["table_name"], "end_user_id = $1", "1")
        for row in await connection.fetch(_DISCOVER)
        if row["table_name"] not in known
    ]
    listed = [entry for entry in PERSON_TABLES if entry.export and entry.table in readable]
    return listed + extra


def plain(value: Any) -> Any:
    """A database value as JSON: ids and times as strings, bytes as base64."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


async def build(
    pool: asyncpg.Pool,
    creator_id: uuid.UUID,
    creator_name: str,
    end_user_id: uuid.UUID,
    *,
    vectors: PersonVectors | None,
    progress: Progress,
) -> tuple[dict[str, Any], int]:
    """(the archive as a JSON-ready document, how many items it holds)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    async with (
        pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        await bind_tenant(connection, creator_id)
        entries = await person_tables(connection)
        counts = [
            int(
                await connection.fetchval(
                    f"SELECT count(*) FROM {e.table} WHERE {e.where}", end_user_id
                )
            )
            for e in entries
        ]
        total = sum(counts) + 1  # the vectors count as one step
        done = 0
        await progress(done, total)
        for entry in entries:
            if entry.table in READERS:
                continue
            rows: list[dict[str, Any]] = []
            sql = f"SELECT * FROM {entry.table} WHERE {entry.where} ORDER BY {entry.order}"
            cursor = connection.cursor(sql, end_user_id, prefetch=BATCH)
            async for record in cursor:
                rows.append({k: plain(v) for k, v in record.items() if k not in entry.hidden})
                done += 1
                if done % BATCH == 0:
                    await progress(done, total)
            tables[entry.table] = rows
    for entry in entries:
        reader = READERS.get(entry.table)
        if reader is not None:
            async with tenant_session(pool, creator_id) as session:
                records = await reader(session, end_user_id)
            tables[entry.table] = [
                {k: plain(v) for k, v in r.items() if k not in entry.hidden} for r in records
            ]
            done += 1
    found = [] if vectors is None else await vectors.of_person(creator_name, end_user_id)
    done += 1
    await progress(done, total)
    document = {
        "format": FORMAT,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "creator": creator_name,
        "end_user_id": str(end_user_id),
        "tables": tables,
        "vectors": [
            {"collection": v.collection, "id": v.id, "document": v.document, "metadata": v.metadata}
            for v in found
        ],
    }
    items = sum(len(rows) for rows in tables.values()) + len(found)
    return document, items


def encode(document: dict[str, Any], fmt: str) -> bytes:
    """The archive's bytes: JSON, or a zip holding ``export.json``."""
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    if fmt == "json":
        return data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.json", data)
    return buffer.getvalue()


MEDIA_TYPES = {"json": "application/json", "zip": "application/zip"}
