"""Leader election on a coordination.k8s.io Lease, so a second replica can stand by.

The leader renews the Lease every third of its duration. A standby takes over when the
Lease has not changed for a whole duration, measured on its own clock (as client-go does,
so clock skew between nodes does not matter). A leader that cannot renew in time stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger("coachops_operator.leader")


def _now() -> datetime:
    return datetime.now(UTC)


class LostLeadershipError(Exception):
    pass


class LeaseElector:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        name: str,
        namespace: str,
        identity: str,
        duration: float = 15.0,
    ) -> None:
        self.api = client.CoordinationV1Api(api)
        self.core = client.CoreV1Api(api)
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration = duration
        self.is_leader = False
        self.last_renewed = 0.0
        self._observed: tuple[str | None, str | None] | None = None
        self._observed_at = 0.0

    def _body(self, lease: Any | None, transitions: int) -> client.V1Lease:
        now = _now()
        acquired = now
        if lease is not None and lease.spec.holder_identity == self.identity:
            acquired = lease.spec.acquire_time
        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                resource_version=lease.metadata.resource_version if lease else None,
            ),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=int(self.duration),
                acquire_time=acquired,
                renew_time=now,
                lease_transitions=transitions,
            ),
        )

    async def _ensure_namespace(self) -> None:
        try:
            await self.core.read_namespace(self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            try:
                await self.core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace))
                )
            except ApiException as conflict:
                if conflict.status != 409:
                    raise

    async def try_acquire(self) -> bool:
        try:
            lease = await self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            await self._ensure_namespace()
            try:
                await self.api.create_namespaced_lease(self.namespace, self._body(None, 0))
            except ApiException as conflict:
                if conflict.status == 409:
                    return False
                raise
            return self._won()
        spec = lease.spec
        holder = spec.holder_identity
        seen = (holder, str(spec.renew_time))
        now = time.monotonic()
        if seen != self._observed:
            self._observed, self._observed_at = seen, now
        expired = now - self._observed_at > (spec.lease_duration_seconds or self.duration)
        if holder and holder != self.identity and not expired:
            return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        try:
            await self.api.replace_namespaced_lease(
                self.name, self.namespace, self._body(lease, transitions)
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return self._won()

    def _won(self) -> bool:
        if not self.is_leader:
            log.info("%s became the leader (Lease %s/%s)", self.identity, self.namespace, self.name)
        self.is_leader = True
        self.last_renewed = time.monotonic()
        return True

    async def acquire(self, retry_period: float = 2.0) -> None:
        """Wait until this replica holds the Lease."""
        log.info("%s is standing by for Lease %s/%s", self.identity, self.namespace, self.name)
        while True:
            try:
                if await self.try_acquire():
                    return
            except (TimeoutError, ApiException, OSError) as error:
                log.warning("lease: %s", type(error).__name__)
            await asyncio.sleep(retry_period)

    async def keep(self) -> None:
        """Renew until renewal fails for a whole duration; then raise LostLeadershipError."""
        while True:
            await asyncio.sleep(self.duration / 3)
            try:
                if not await self.try_acquire():
                    raise LostLeadershipError("another replica holds the Lease")
            except (TimeoutError, ApiException, OSError) as error:
                log.warning("lease renewal failed: %s", type(error).__name__)
                if time.monotonic() - self.last_renewed > self.duration * 2 / 3:
                    raise LostLeadershipError("could not renew the Lease in time") from None

    async def release(self) -> None:
        """Hand over at once on a clean shutdown."""
        if not self.is_leader:
            return
        try:
            lease = await self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = ""
                lease.spec.renew_time = _now()
                await self.api.replace_namespaced_lease(self.name, self.namespace, lease)
        except (TimeoutError, ApiException, OSError):
            pass
        self.is_leader = False
