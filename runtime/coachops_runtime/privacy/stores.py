"""A person's traces outside PostgreSQL: Redis keys and Chroma vectors.

Redis: the runtime writes, under the tenant's prefix (``tenant_redis_prefix``),
``rl:tenant`` and ``quota:messages:<month>`` (the tenant's, about no person),
``rl:end-user:<end user id>`` (the person's rate limit) and ``reply:<job id>`` (the
stream of one reply, whose text is the person's conversation). Keys about a person carry
their id or one of their reply jobs' ids; ``person_keys`` finds both, and any future key
that follows the convention of naming the end user.

Chroma: vectors about a person carry ``end_user_id`` in their metadata (the knowledge
collections hold the creator's documents and none today); ``PersonVectors`` finds and
deletes them in every collection of the creator's Chroma database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis.asyncio as aioredis

from coachops_crds.constants import CHROMA_DATABASE, chroma_tenant, tenant_redis_prefix
from coachops_runtime.knowledge.vectors import VectorStore, VectorStoreError

PAGE = 500


def reply_stream_key(creator_name: str, job_id: uuid.UUID | str) -> str:
    return f"{tenant_redis_prefix(creator_name)}reply:{job_id}"


async def person_keys(
    redis: aioredis.Redis,
    creator_name: str,
    end_user_id: uuid.UUID,
    reply_job_ids: Iterable[uuid.UUID | str] = (),
) -> list[str]:
    """Keys of the person that exist now: their rate limit, their reply streams and any
    key of their tenant naming them."""
    prefix = tenant_redis_prefix(creator_name)
    named = [f"{prefix}rl:end-user:{end_user_id}"]
    named += [reply_stream_key(creator_name, job) for job in reply_job_ids]
    found: list[str] = []
    for start in range(0, len(named), PAGE):
        batch = named[start : start + PAGE]
        exists = await _exists_each(redis, batch)
        found += [key for key, present in zip(batch, exists, strict=True) if present]
    async for key in redis.scan_iter(match=f"{prefix}*{end_user_id}*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name not in found:
            found.append(name)
    return found


async def _exists_each(redis: aioredis.Redis, keys: list[str]) -> list[bool]:
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.exists(key)
        answers = await pipe.execute()
    return [bool(answer) for answer in answers]


@dataclass(frozen=True)
class Vector:
    collection: str
    id: str
    document: str | None
    metadata: dict[str, Any]


class PersonVectors:
    """Vectors about one person in a creator's Chroma database, through Chroma's REST API."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def _base(self, creator_name: str) -> str:
        return f"/tenants/{quote(chroma_tenant(creator_name))}/databases/{CHROMA_DATABASE}"

    async def collections(self, creator_name: str) -> list[tuple[str, str]]:
        """(id, name) of every collection; none when the tenant or database is missing."""
        found: list[tuple[str, str]] = []
        offset = 0
        while True:
            path = f"{self._base(creator_name)}/collections?limit={PAGE}&offset={offset}"
            status, answer = await self.store._call("GET", path)
            if status != 200 or not isinstance(answer, list):
                if _missing(status, answer):
                    return found
                raise VectorStoreError(f"Chroma listed collections with {status}: {answer}"[:300])
            found += [(str(item["id"]), str(item["name"])) for item in answer]
            if len(answer) < PAGE:
                return found
            offset += PAGE

    async def _get(
        self, creator_name: str, collection_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        path = f"{self._base(creator_name)}/collections/{collection_id}/get"
        status, answer = await self.store._call("POST", path, body)
        if status != 200 or not isinstance(answer, dict):
            raise VectorStoreError(f"Chroma get answered {status}: {answer}"[:300])
        return answer

    async def of_person(self, creator_name: str, end_user_id: uuid.UUID) -> list[Vector]:
        where = {"end_user_id": str(end_user_id)}
        vectors: list[Vector] = []
        for collection_id, name in await self.collections(creator_name):
            offset = 0
            while True:
                answer = await self._get(
                    creator_name,
                    collection_id,
                    {
                        "where": where,
                        "include": ["documents", "metadatas"],
                        "limit": PAGE,
                        "offset": offset,
                    },
                )
                ids = answer.get("ids") or []
                documents = answer.get("documents") or [None] * len(ids)
                metadatas = answer.get("metadatas") or [None] * len(ids)
                vectors += [
                    Vector(name, str(i), d, dict(m or {}))
                    for i, d, m in zip(ids, documents, metadatas, strict=True)
                ]
                if len(ids) < PAGE:
                    break
                offset += PAGE
        return vectors

    async def delete_person(self, creator_name: str, end_user_id: uuid.UUID) -> int:
        """Delete the person's vectors in every collection; how many there were."""
        removed = 0
        where = {"end_user_id": str(end_user_id)}
        for collection_id, _name in await self.collections(creator_name):
            answer = await self._get(creator_name, collection_id, {"where": where, "include": []})
            ids = [str(i) for i in answer.get("ids") or []]
            if not ids:
                continue
            path = f"{self._base(creator_name)}/collections/{collection_id}/delete"
            status, reply = await self.store._call("POST", path, {"ids": ids})
            if status != 200:
                raise VectorStoreError(f"Chroma delete answered {status}: {reply}"[:300])
            removed += len(ids)
        return removed


def _missing(status: int, answer: Any) -> bool:
    text = str(answer).lower()
    return status == 404 or (
        status in (400, 500) and ("not found" in text or "does not exist" in text)
    )
