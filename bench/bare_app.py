"""The baseline: a bare ASGI app on uvicorn + asyncpg running the same SQL as the runtime's
messages endpoint (same role, same transaction, same tenant context), and nothing else."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any
from urllib.parse import parse_qs

import asyncpg

POOL: asyncpg.Pool | None = None
SQL = (
    "SELECT message_id, conversation_id, direction, author, kind, body, created_at"
    " FROM messages WHERE conversation_id = $1 AND message_id > $2"
    " ORDER BY message_id LIMIT $3"
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global POOL
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                POOL = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=10, max_size=30)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if POOL is not None:
                    await POOL.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = parse_qs(scope["query_string"].decode())
    tenant = query["tenant"][0]
    conversation = query["conversation"][0]
    assert POOL is not None
    # The same statements the runtime sends for this page: BEGIN and the tenant binding in
    # one round trip, the page, the existence check only for an empty page, COMMIT.
    tenant = str(uuid.UUID(tenant))
    async with POOL.acquire() as conn:
        await conn.execute(f"BEGIN; SELECT set_config('coachops.tenant_id', '{tenant}', true)")
        try:
            rows = await conn.fetch(SQL, uuid.UUID(conversation), 0, 51)
            if not rows:
                await conn.fetchval(
                    "SELECT 1 FROM conversations WHERE conversation_id = $1",
                    uuid.UUID(conversation),
                )
        finally:
            await conn.execute("COMMIT")
    body = json.dumps(
        {
            "items": [
                {
                    **dict(r),
                    "conversation_id": str(r["conversation_id"]),
                    "created_at": r["created_at"].isoformat(),
                }
                for r in rows[:50]
            ],
            "next_cursor": None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
