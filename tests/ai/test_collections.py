"""The worker's kept collections: one lookup per program, and a kept id that stops working
(the collection deleted and created again) is looked up again instead of failing."""

from __future__ import annotations

import uuid

import httpx

from coachops_crds.constants import CHROMA_DATABASE, chroma_collection, chroma_tenant
from coachops_devstack.stack import Stack
from coachops_operator.vectors import VectorStore as OperatorVectors
from coachops_runtime.ai.collections import KeepingVectorStore


async def test_a_recreated_collection_is_found_again(stack: Stack) -> None:
    creator = f"aicol{uuid.uuid4().hex[:8]}"
    program = uuid.uuid4()
    operator = OperatorVectors(stack.chroma.url)
    try:
        await operator.ensure(chroma_tenant(creator), CHROMA_DATABASE)
    finally:
        await operator.close()
    store = KeepingVectorStore(stack.chroma.url)
    try:
        first = store.collection(creator, program)
        assert store.collection(creator, program) is first  # kept, id and all
        await first.upsert(["a"], [[1.0, 0.0, 0.0]], ["alpha"], [{"n": 1}])
        (hit,) = await first.query([1.0, 0.0, 0.0], 1)
        assert hit.text == "alpha"

        base = (
            f"{stack.chroma.url}/api/v2/tenants/{chroma_tenant(creator)}"
            f"/databases/{CHROMA_DATABASE}/collections"
        )
        async with httpx.AsyncClient() as http:
            deleted = await http.delete(f"{base}/{chroma_collection(program)}")
            assert deleted.status_code == 200, deleted.text
            created = await http.post(base, json={"name": chroma_collection(program)})
            assert created.status_code == 200, created.text
            await http.post(
                f"{base}/{created.json()['id']}/upsert",
                json={
                    "ids": ["b"],
                    "embeddings": [[0.0, 1.0, 0.0]],
                    "documents": ["beta"],
                    "metadatas": [{"n": 2}],
                },
            )
        (hit,) = await store.collection(creator, program).query([0.0, 1.0, 0.0], 1)
        assert hit.text == "beta"
    finally:
        await store.close()
