"""The worker's vector store: it keeps each program's collection between jobs, so a
retrieval costs one Chroma call (the query) instead of two (looking the collection's id up
by name, then the query). A kept id that stops working (the collection was deleted, or
deleted and created again) is looked up again once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coachops_crds.constants import chroma_collection, chroma_tenant
from coachops_runtime.knowledge.vectors import Collection, VectorStore, VectorStoreError

MAX_KEPT = 10_000


class KeptCollection(Collection):
    async def _post(self, action: str, body: Mapping[str, Any], *, create: bool) -> Any:
        try:
            return await super()._post(action, body, create=create)
        except VectorStoreError:
            if self._id is None:
                raise
            self._id = None
            return await super()._post(action, body, create=create)


class KeepingVectorStore(VectorStore):
    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        super().__init__(url, timeout=timeout)
        self._kept: dict[tuple[str, str], Collection] = {}

    def collection(self, creator_name: str, program_id: Any) -> Collection:
        key = (creator_name, str(program_id))
        found = self._kept.get(key)
        if found is None:
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            found = KeptCollection(self, chroma_tenant(creator_name), chroma_collection(program_id))
            self._kept[key] = found
        return found
