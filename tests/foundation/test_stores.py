"""PostgreSQL RLS, Redis ACLs and ChromaDB are real servers that enforce what we rely on."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import chromadb
import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from coachops_devstack.stack import Stack
from coachops_operator.redis_users import RedisUsers
from tests.conftest import Database


async def test_forced_rls_returns_no_rows_without_tenant_context(database: Database) -> None:
    tenant = uuid.uuid4()
    owner = await asyncpg.connect(database.owner_dsn)
    try:
        async with owner.transaction():
            await owner.execute("SELECT set_config('coachops.tenant_id', $1, true)", str(tenant))
            await owner.execute(
                "INSERT INTO creators"
                " (creator_id, name, display_name, contact_email, plan, isolation)"
                " VALUES ($1, 'alpha', 'Alpha', 'a@example.com', '{}', 'shared')",
                tenant,
            )
        # Even the table owner sees nothing without a tenant: RLS is forced.
        assert await owner.fetchval("SELECT count(*) FROM creators") == 0
    finally:
        await owner.close()

    runtime = await asyncpg.connect(database.runtime_dsn)
    try:
        assert await runtime.fetchval("SELECT count(*) FROM creators") == 0
        async with runtime.transaction():
            await runtime.execute("SELECT set_config('coachops.tenant_id', $1, true)", str(tenant))
            assert await runtime.fetchval("SELECT count(*) FROM creators") == 1
        # SET LOCAL ended with the transaction: back to nothing.
        assert await runtime.fetchval("SELECT count(*) FROM creators") == 0
        superuser = await runtime.fetchval(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert superuser is False
    finally:
        await runtime.close()


async def test_the_operators_redis_acl_confines_a_tenant_to_its_prefix(
    stack: Stack, redis_prefix: str
) -> None:
    """The ACL rules the operator gives a dedicated tenant's user, applied by its own code."""
    admin = aioredis.Redis.from_url(stack.redis.url)
    users = RedisUsers(stack.redis.url)
    user = f"acl-{uuid.uuid4().hex[:8]}"
    own = f"{redis_prefix}mine:"
    password = "s3cret-pass"
    try:
        await admin.set(f"{redis_prefix}other:secret", "b")
        await users.ensure_user(user, own, password)
        assert await users.user_problems(user, own, password) == []
        confined = aioredis.Redis(
            host="127.0.0.1", port=stack.redis.port, username=user, password=password
        )
        try:
            await confined.set(f"{own}key", "a")
            assert await confined.get(f"{own}key") == b"a"
            with pytest.raises(NoPermissionError):
                await confined.get(f"{redis_prefix}other:secret")
            with pytest.raises(NoPermissionError):
                await confined.set(f"{redis_prefix}other:secret", "overwritten")
            # Data commands only: nothing that lists, wipes or reconfigures the server.
            execute: Any = confined.execute_command  # redis-py leaves it untyped
            for command in (("KEYS", "*"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("ACL", "LIST")):
                with pytest.raises(NoPermissionError):
                    await execute(*command)
        finally:
            await confined.aclose()
        assert await admin.get(f"{redis_prefix}other:secret") == b"b"
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()
        await users.close()


async def test_chroma_heartbeat_and_collection_round_trip(
    stack: Stack, unique_name: Callable[[str], str]
) -> None:
    async with httpx.AsyncClient() as http:
        beat = await http.get(f"{stack.chroma.url}/api/v2/heartbeat")
    assert beat.status_code == 200
    assert "nanosecond heartbeat" in beat.json()

    chroma = await chromadb.AsyncHttpClient(host="127.0.0.1", port=stack.chroma.port)
    name = unique_name("smoke-")
    collection = await chroma.create_collection(name, embedding_function=None)
    try:
        embeddings: list[Sequence[float]] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        query: list[Sequence[float]] = [[0.9, 0.1, 0.0]]
        await collection.add(
            ids=["a", "b"],
            embeddings=embeddings,
            documents=["first", "second"],
            metadatas=[{"creator": "x"}, {"creator": "y"}],
        )
        result = await collection.query(query_embeddings=query, n_results=1, where={"creator": "x"})
        assert result["ids"] == [["a"]]
        assert result["documents"] == [["first"]]
    finally:
        await chroma.delete_collection(name)
