"""ChromaDB: a tenant and a database per creator, through Chroma's v2 REST API.

httpx.AsyncClient speaks the same endpoints as ``chromadb.AsyncHttpClient`` without its
per-process system cache; Chroma 1.5 has no API to delete a tenant, so ``Delete`` removes
the creator's database (and every collection in it) and leaves the empty tenant name.
"""

from __future__ import annotations

import httpx

STORE_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError,)


class VectorStoreError(Exception):
    pass


class VectorStore:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.client = httpx.AsyncClient(base_url=url.rstrip("/") + "/api/v2", timeout=timeout)

    async def close(self) -> None:
        await self.client.aclose()

    async def ensure(self, tenant: str, database: str) -> bool:
        """Create the tenant and the database unless they exist (409 means they do);
        True when something was created."""
        created = False
        response = await self.client.post("/tenants", json={"name": tenant})
        if response.status_code not in (200, 201, 409):
            raise VectorStoreError(f"creating tenant: HTTP {response.status_code}")
        created |= response.status_code != 409
        response = await self.client.post(f"/tenants/{tenant}/databases", json={"name": database})
        if response.status_code not in (200, 201, 409):
            raise VectorStoreError(f"creating database: HTTP {response.status_code}")
        return created or response.status_code != 409

    async def database_exists(self, tenant: str, database: str) -> bool:
        response = await self.client.get(f"/tenants/{tenant}/databases/{database}")
        if response.status_code == 200:
            return True
        if response.status_code in (400, 404, 500) and "not found" in response.text.lower():
            return False
        if response.status_code == 404:
            return False
        raise VectorStoreError(f"reading database: HTTP {response.status_code}")

    async def collections(self, tenant: str, database: str) -> list[str]:
        response = await self.client.get(f"/tenants/{tenant}/databases/{database}/collections")
        if response.status_code != 200:
            return []
        return [str(item["name"]) for item in response.json()]

    async def delete(self, tenant: str, database: str) -> None:
        """Delete the database and every collection in it."""
        if not await self.database_exists(tenant, database):
            return
        for name in await self.collections(tenant, database):
            await self.client.delete(f"/tenants/{tenant}/databases/{database}/collections/{name}")
        response = await self.client.delete(f"/tenants/{tenant}/databases/{database}")
        if response.status_code not in (200, 204, 404):
            raise VectorStoreError(f"deleting database: HTTP {response.status_code}")
