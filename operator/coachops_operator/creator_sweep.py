"""The periodic drift check of every Creator: one task for all of them (``sweep.py``).

Each pass first checks (and repairs) row-level security, which is global, once
(``drift_check.check_policies``, never twice within half an interval), and posts
``RowLevelSecurityRepaired`` on the first Creator of the pass when it restored anything.
Then, for each due Creator, under the Creator's lock (a Creator whose lock is taken, by its
change handler or its deletion, is left out): ``drift_check.find_drift``; any drift posts
``DriftDetected``, counts in ``DRIFT_REPAIRS``, runs the full reconcile, writes its status
and Events and, unless the reconcile is to be retried, posts ``DriftRepaired``. Without
drift, ``creator.refresh_status`` keeps RuntimeReady, Ready and the program count true,
and only the fields that changed are written. Status is a merge patch of the status
subresource, as kopf's patches are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from coachops_crds import constants as c
from coachops_operator import creator, drift_check, metrics
from coachops_operator.sweep import Sweep, key_of


class CreatorSweep(Sweep[int]):
    """Checks every Creator the operator knows for drift, every ``interval`` seconds;
    ``lookup`` is a Creator's number of programs. Gives way to Creators' reconciles."""

    api_version = c.API_VERSION
    kind = c.CREATOR_KIND
    log = logging.getLogger("coachops_operator")

    def reconciles_busy(self) -> bool:
        return self.stores.gate.locked()

    def due(self, body: Mapping[str, Any], now: float) -> bool:
        # The change handler (or the deletion's reclaim) holds the Creator's lock.
        return super().due(body, now) and not self.stores.lock(key_of(body)[1]).locked()

    async def begin(self, bodies: list[Mapping[str, Any]]) -> None:
        live = [body for body in bodies if not body["metadata"].get("deletionTimestamp")]
        if not live:
            return
        restored = await drift_check.check_policies(self.stores)
        if restored:
            await self.post(live[0], "Warning", "RowLevelSecurityRepaired", restored[:1000])

    async def check(self, body: Mapping[str, Any]) -> None:
        """Repair the Creator's drift, else refresh its status."""
        name = key_of(body)[1]
        lock = self.stores.lock(name)
        if lock.locked():  # taken since the pass looked
            return
        async with lock:
            problems = await drift_check.find_drift(self.stores, name, body)
            count = self.lookup(name)
            if problems:
                await self._repair(body, name, problems, count)
                return
            changes, events = creator.refresh_status(self.stores, name, body, count)
        if changes and not await self.write_status(body, changes):
            return
        for type_, reason, message in events:
            await self.post(body, type_, reason, message)

    async def _repair(
        self, body: Mapping[str, Any], name: str, problems: list[str], count: int
    ) -> None:
        found = "; ".join(problems)
        self.log.warning("creator %s: drift: %s", name, found)
        await self.post(body, "Warning", "DriftDetected", found[:1000])
        for problem in problems:
            metrics.DRIFT_REPAIRS.labels(problem.split(" ")[0]).inc()
        outcome = await creator.reconcile(self.stores, name, body)
        if not await self.write_status(body, {**outcome.status, "programs": count}):
            return
        for type_, reason, message in outcome.events:
            await self.post(body, type_, reason, message)
        if not outcome.retry and not outcome.permanent:
            await self.post(body, "Normal", "DriftRepaired", found[:1000])
