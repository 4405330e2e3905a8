"""A program's Chroma collection, through Chroma's v2 REST API with aiohttp.

Each program has one collection (``coachops_crds.constants.chroma_collection``) in its
creator's Chroma tenant and database, which the operator creates; this client creates
only the collection, with cosine distance. Chroma's own client is not used: it keeps a
per-process system cache and imports far more than these few calls need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from coachops_crds.constants import CHROMA_DATABASE, chroma_collection, chroma_tenant

Metadata = Mapping[str, str | int | float | bool]


class VectorStoreError(Exception):
    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing  # the tenant, database or collection does not exist


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    metadata: Mapping[str, Any]
    distance: float


class VectorStore:
    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.base = url.rstrip("/") + "/api/v2"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        try:
            async with self._client().request(method, self.base + path, json=body) as response:
                if response.content_type == "application/json":
                    return response.status, await response.json()
                return response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise VectorStoreError(
                f"Chroma unreachable: {error or type(error).__name__}"
            ) from error

    def collection(self, creator_name: str, program_id: Any) -> Collection:
        return Collection(self, chroma_tenant(creator_name), chroma_collection(program_id))


def _missing(status: int, answer: Any) -> bool:
    text = str(answer).lower()
    return status == 404 or (
        status in (400, 500) and ("not found" in text or "does not exist" in text)
    )


class Collection:
    """One program's collection; its id is looked up (or the collection created) once."""

    def __init__(self, store: VectorStore, tenant: str, name: str) -> None:
        self.store = store
        self.tenant = tenant
        self.name = name
        self.prefix = f"/tenants/{quote(tenant)}/databases/{CHROMA_DATABASE}/collections"
        self._id: str | None = None

    async def _collection_id(self, *, create: bool) -> str | None:
        if self._id is not None:
            return self._id
        if create:
            body = {
                "name": self.name,
                "get_or_create": True,
                "configuration": {"hnsw": {"space": "cosine"}},
            }
            status, answer = await self.store._call("POST", self.prefix, body)
        else:
            status, answer = await self.store._call("GET", f"{self.prefix}/{quote(self.name)}")
        if status == 200 and isinstance(answer, dict):
            self._id = str(answer["id"])
            return self._id
        if _missing(status, answer):
            if not create:
                return None
            raise VectorStoreError(
                f"Chroma tenant {self.tenant} has no database {CHROMA_DATABASE}", missing=True
            )
        raise VectorStoreError(
            f"Chroma answered {status} for collection {self.name}: {answer}"[:500]
        )

    async def _post(self, action: str, body: Mapping[str, Any], *, create: bool) -> Any:
        collection = await self._collection_id(create=create)
        if collection is None:
            return None
        status, answer = await self.store._call(
            "POST", f"{self.prefix}/{collection}/{action}", dict(body)
        )
        if status != 200:
            raise VectorStoreError(f"Chroma {action} answered {status}: {answer}"[:500])
        return answer

    async def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[Metadata],
    ) -> None:
        body = {
            "ids": list(ids),
            "embeddings": [list(v) for v in vectors],
            "documents": list(texts),
            "metadatas": [dict(m) for m in metadatas],
        }
        await self._post("upsert", body, create=True)

    async def ids(self, where: Mapping[str, Any]) -> list[str]:
        """Ids of the chunks matching ``where`` (none when there is no collection)."""
        answer = await self._post("get", {"where": dict(where), "include": []}, create=False)
        return [] if answer is None else [str(i) for i in answer.get("ids", [])]

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            await self._post("delete", {"ids": list(ids)}, create=False)

    async def count(self) -> int:
        collection = await self._collection_id(create=False)
        if collection is None:
            return 0
        status, answer = await self.store._call("GET", f"{self.prefix}/{collection}/count")
        if status != 200:
            raise VectorStoreError(f"Chroma count answered {status}: {answer}"[:500])
        return int(answer)

    async def query(
        self, vector: Sequence[float], k: int, where: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        body: dict[str, Any] = {
            "query_embeddings": [list(vector)],
            "n_results": k,
            "include": ["documents", "metadatas", "distances"],
        }
        if where:
            body["where"] = dict(where)
        answer = await self._post("query", body, create=False)
        if answer is None:
            return []
        ids, texts = answer["ids"][0], answer["documents"][0]
        metadatas, distances = answer["metadatas"][0], answer["distances"][0]
        return [
            Hit(str(i), str(t or ""), m or {}, float(d))
            for i, t, m, d in zip(ids, texts, metadatas, distances, strict=True)
        ]
