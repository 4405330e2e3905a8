"""The objects the operator made, as the cluster holds them: one list-and-watch per kind.

The reconcile's lookups and the drift check read this instead of asking the API. Each kind
is listed once when the operator starts (before any handler runs), then watched from that
list's resourceVersion; a watch that ends is resumed where it stopped, and one the API
expired (410 Gone) or that failed lists again. Only the projection the drift check
compares is kept (drift.projection), and never a Secret's values.

Why not kopf indexes: kopf runs each watch event of each child through its per-object
queue, cause detection and memory, and a new Creator brings ~10 such events. At 1,000
Creators that was ~15 % of the operator's CPU (py-spy, bench/creators_bench.py); here an
event is a JSON parse and two dict updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from coachops_crds import constants as c
from coachops_operator import drift, kube

log = logging.getLogger("coachops_operator.children")

Key = tuple[str, str, str]  # (kind, namespace, name)
RETRY_SECONDS = 2.0
# What ends a watch: the API (or the connection to it), or an event it cannot make sense of.
WATCH_ERRORS: tuple[type[BaseException], ...] = (*kube.KUBE_ERRORS, KeyError, ValueError)


class Children:
    """Live children by creator: ``find`` one, or ``of`` a creator for all of them."""

    def __init__(
        self,
        api: kube.KubeClient,
        kinds: Sequence[tuple[str, str]],
        shapes: Mapping[str, Mapping[str, Any]],
        selector: str,
    ) -> None:
        self._api = api
        self._kinds = list(kinds)  # (apiVersion, kind)
        self._shapes = shapes
        self._selector = selector
        self._by_creator: dict[str, dict[Key, Any]] = {}
        self._creator_of: dict[Key, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def find(self, creator: str, kind: str, namespace: str, name: str) -> Any:
        return self._by_creator.get(creator, {}).get((kind, namespace, name))

    def of(self, creator: str) -> dict[Key, Any]:
        return dict(self._by_creator.get(creator, {}))

    async def start(self) -> None:
        """List every kind (so the first lookups are true), then keep watching."""
        versions = await asyncio.gather(*(self._list(v, k) for v, k in self._kinds))
        self._tasks = [
            asyncio.create_task(self._watch(api_version, kind, version), name=f"watch {kind}")
            for (api_version, kind), version in zip(self._kinds, versions, strict=True)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # ------------------------------------------------------------ the index

    def _put(self, kind: str, obj: Mapping[str, Any]) -> None:
        key = self._forget(kind, obj)
        creator = (obj["metadata"].get("labels") or {}).get(c.LABEL_CREATOR)
        if creator:
            projection = drift.projection(obj, self._shapes.get(kind))
            self._by_creator.setdefault(creator, {})[key] = projection
            self._creator_of[key] = creator

    def _forget(self, kind: str, obj: Mapping[str, Any]) -> Key:
        meta = obj["metadata"]
        key = (kind, meta.get("namespace") or "", meta["name"])
        creator = self._creator_of.pop(key, None)
        if creator is not None:
            children = self._by_creator.get(creator, {})
            children.pop(key, None)
            if not children:
                self._by_creator.pop(creator, None)
        return key

    # ------------------------------------------------------------ list and watch

    async def _list(self, api_version: str, kind: str) -> str:
        result = await self._api.request(
            "GET",
            kube.all_namespaces_path(api_version, kind),
            query={"labelSelector": self._selector},
        )
        for key in [key for key in self._creator_of if key[0] == kind]:
            self._forget(kind, {"metadata": {"namespace": key[1], "name": key[2]}})
        for item in result.get("items", []):
            item["kind"] = kind  # list items leave it out; the projection reads it
            self._put(kind, item)
        version: str = result["metadata"]["resourceVersion"]
        return version

    async def _watch(self, api_version: str, kind: str, version: str) -> None:
        path = kube.all_namespaces_path(api_version, kind)
        while True:
            try:
                async for event in self._api.watch(
                    path, {"labelSelector": self._selector, "resourceVersion": version}
                ):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise kube.KubeError(
                            int(obj.get("code") or 500),
                            str(obj.get("reason", "")),
                            str(obj.get("message", "")),
                        )
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] == "DELETED":
                        self._forget(kind, obj)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self._put(kind, obj)
            except asyncio.CancelledError:
                raise
            except WATCH_ERRORS as error:
                expired = isinstance(error, kube.KubeError) and error.status == 410
                if not expired:
                    log.warning("watch of %s failed (%s); listing again", kind, error)
                    await asyncio.sleep(RETRY_SECONDS)
                try:
                    version = await self._list(api_version, kind)
                except kube.KUBE_ERRORS as again:
                    log.warning("cannot list %s (%s); will retry", kind, again)
