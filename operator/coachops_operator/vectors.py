"""ChromaDB: a tenant and a database per creator, through Chroma's v2 REST API.

An aiohttp session speaks the same endpoints as ``chromadb.AsyncHttpClient`` without its
per-process system cache or its imports. Chroma 1.5 has no API to delete a tenant, so
``Delete`` removes the creator's database (and every collection in it) and leaves the
empty tenant name.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from coachops_operator import fence

STORE_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError)


class VectorStoreError(Exception):
    pass


class VectorStore:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.base = url.rstrip("/") + "/api/v2"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Opened on first use, inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        return self._session

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        fence.check()
        async with self._client().request(method, self.base + path, json=body) as response:
            text = await response.text()
            if response.status == 200 and response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def ensure(self, tenant: str, database: str) -> bool:
        """Create the tenant and the database unless they exist (409 means they do);
        True when something was created."""
        status, _ = await self._call("POST", "/tenants", {"name": tenant})
        if status not in (200, 201, 409):
            raise VectorStoreError(f"creating tenant: HTTP {status}")
        created = status != 409
        status, _ = await self._call("POST", f"/tenants/{tenant}/databases", {"name": database})
        if status not in (200, 201, 409):
            raise VectorStoreError(f"creating database: HTTP {status}")
        return created or status != 409

    async def database_exists(self, tenant: str, database: str) -> bool:
        status, answer = await self._call("GET", f"/tenants/{tenant}/databases/{database}")
        if status == 200:
            return True
        if status == 404 or (status in (400, 500) and "not found" in str(answer).lower()):
            return False
        raise VectorStoreError(f"reading database: HTTP {status}")

    async def collections(self, tenant: str, database: str) -> list[str]:
        path = f"/tenants/{tenant}/databases/{database}/collections"
        status, answer = await self._call("GET", path)
        if status != 200 or not isinstance(answer, list):
            return []
        return [str(item["name"]) for item in answer]

    async def delete_collection(self, tenant: str, database: str, name: str) -> None:
        """Delete one collection; gone already (or its database) is fine."""
        path = f"/tenants/{tenant}/databases/{database}/collections/{name}"
        status, answer = await self._call("DELETE", path)
        missing = status == 404 or "not found" in str(answer).lower()
        if status not in (200, 204) and not missing:
            raise VectorStoreError(f"deleting collection: HTTP {status}")

    async def delete(self, tenant: str, database: str) -> None:
        """Delete the database and every collection in it."""
        if not await self.database_exists(tenant, database):
            return
        path = f"/tenants/{tenant}/databases/{database}"
        for name in await self.collections(tenant, database):
            await self._call("DELETE", f"{path}/collections/{name}")
        status, _ = await self._call("DELETE", path)
        if status not in (200, 204, 404):
            raise VectorStoreError(f"deleting database: HTTP {status}")
