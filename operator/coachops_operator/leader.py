"""Leader election on a coordination.k8s.io Lease, so a second replica can stand by.

The leader renews the Lease every third of its duration. A standby takes over when the
Lease has not changed for a whole duration, measured on its own clock (as client-go does,
so clock skew between nodes does not matter). The leader must stop before that can
happen: each successful renewal arms the fence (``fence.py``) until the time the renewal
was *sent* plus the duration less a margin, on the monotonic clock. A renewal that fails
is tried again every second until then; at the deadline, or as soon as another replica
holds the Lease, the process exits at once (no graceful shutdown, during which kopf could
still write). Any request the process would make after the deadline (say it was frozen
and resumes) exits it first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from coachops_operator import fence, kube

log = logging.getLogger("coachops_operator.leader")
LEASE_API = "coordination.k8s.io/v1"


def _now() -> str:
    """A MicroTime, as Lease fields want it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def margin(duration: float) -> float:
    """How long before the Lease could expire the leader stops: room for the time a
    renewal takes to reach the apiserver and for clocks that run at slightly different
    rates, never more than half the duration."""
    return min(max(2.0, duration / 5), duration / 2)


class LeaseElector:
    def __init__(
        self,
        api: kube.KubeClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        duration: float = 15.0,
    ) -> None:
        self.api = api
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration = duration
        self.is_leader = False
        self.last_renewed = 0.0  # monotonic time the last successful renewal was sent
        self.retry_period = 1.0
        self._observed: tuple[str | None, str | None] | None = None
        self._observed_at = 0.0

    def _body(self, lease: dict[str, Any] | None, transitions: int) -> dict[str, Any]:
        now = _now()
        spec = (lease or {}).get("spec", {})
        held = spec.get("holderIdentity") == self.identity
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": spec.get("acquireTime") if held else now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    async def _ensure_namespace(self) -> None:
        if await kube.get(self.api, "v1", "Namespace", None, self.namespace) is not None:
            return
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        try:
            await kube.create(self.api, namespace)
        except kube.KubeError as conflict:
            if conflict.status != 409:
                raise

    @property
    def deadline(self) -> float:
        """Monotonic time by which this replica must have stopped unless it renews."""
        return self.last_renewed + self.duration - margin(self.duration)

    async def try_acquire(self) -> bool:
        sent = time.monotonic()  # before the request: the Lease cannot be newer than this
        lease = await kube.get(self.api, LEASE_API, "Lease", self.namespace, self.name)
        if lease is None:
            await self._ensure_namespace()
            try:
                await kube.create(self.api, self._body(None, 0))
            except kube.KubeError as conflict:
                if conflict.status == 409:
                    return False
                raise
            return self._won(sent)
        spec = lease.get("spec", {})
        holder = spec.get("holderIdentity")
        seen = (holder, str(spec.get("renewTime")))
        now = time.monotonic()
        if seen != self._observed:
            self._observed, self._observed_at = seen, now
        expired = now - self._observed_at > (spec.get("leaseDurationSeconds") or self.duration)
        if holder and holder != self.identity and not expired:
            return False
        transitions = (spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        try:
            await kube.replace(self.api, self._body(lease, transitions))
        except kube.KubeError as error:
            if error.status == 409:
                return False
            raise
        return self._won(sent)

    def _won(self, sent: float) -> bool:
        if not self.is_leader:
            log.info("%s became the leader (Lease %s/%s)", self.identity, self.namespace, self.name)
        self.is_leader = True
        self.last_renewed = sent
        fence.arm(self.deadline)
        return True

    async def acquire(self, retry_period: float = 2.0) -> None:
        """Wait until this replica holds the Lease."""
        log.info("%s is standing by for Lease %s/%s", self.identity, self.namespace, self.name)
        while True:
            try:
                if await self.try_acquire():
                    return
            except kube.KUBE_ERRORS as error:
                log.warning("lease: %s", error)
            await asyncio.sleep(retry_period)

    async def keep(self) -> None:
        """Renew every third of the duration for as long as the process runs; exit the
        process when the Lease is lost or cannot be renewed before the deadline."""
        while True:
            await asyncio.sleep(max(0.0, min(self.duration / 3, fence.remaining())))
            while True:
                fence.check()  # past the deadline: exit before anything else runs
                try:
                    if not await self.try_acquire():
                        fence.stop("another replica holds the Lease")
                    break
                except kube.KUBE_ERRORS as error:
                    log.warning("lease renewal failed: %s", error)
                await asyncio.sleep(max(0.0, min(self.retry_period, fence.remaining())))

    async def release(self) -> None:
        """Hand over at once on a clean shutdown."""
        if not self.is_leader:
            return
        try:
            lease = await kube.get(self.api, LEASE_API, "Lease", self.namespace, self.name)
            if lease is not None and lease["spec"].get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = ""
                lease["spec"]["renewTime"] = _now()
                await kube.replace(self.api, lease)
        except kube.KUBE_ERRORS:
            pass
        self.is_leader = False
