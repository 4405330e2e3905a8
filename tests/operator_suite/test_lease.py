"""The Lease election (leader.py) against the real apiserver, with electors in this process
standing in for replicas: who wins a fresh Lease, a race for it, a held Lease, a takeover
once it stopped changing, a clean hand-over, and an apiserver that cannot be reached.

Every win arms the process's fence (fence.py), which would end this test process at the
deadline of a replica that stopped renewing; each test disarms it where a replica of its
own would have stopped, and the fixture disarms it at the end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import kopf
import pytest

from coachops_operator import fence, kube
from coachops_operator.credentials import Credentials, from_kubeconfig
from coachops_operator.leader import LEASE_API, LeaseElector
from tests.conftest import Cluster

Electors = Callable[..., LeaseElector]


@pytest.fixture
async def electors(cluster: Cluster) -> AsyncIterator[Electors]:
    """Electors for one Lease in a namespace that does not exist yet."""
    namespace = f"lease-{uuid.uuid4().hex[:8]}"
    clients: list[kube.KubeClient] = []

    def new(identity: str, duration: float = 15.0, server: str | None = None) -> LeaseElector:
        credentials = from_kubeconfig([cluster.kubeconfig])
        if server is not None:  # an apiserver that is not there
            credentials = Credentials(kopf.ConnectionInfo(server=server, token="t0ken"))
        api = kube.KubeClient(credentials)
        clients.append(api)
        return LeaseElector(
            api,
            name="coachops-operator",
            namespace=namespace,
            identity=identity,
            duration=duration,
        )

    try:
        yield new
    finally:
        fence.disarm()
        admin = kube.KubeClient(from_kubeconfig([cluster.kubeconfig]))
        await kube.delete(admin, "v1", "Namespace", None, namespace)
        for api in [admin, *clients]:
            await api.close()


async def _holder(elector: LeaseElector) -> tuple[str, int]:
    lease = await kube.get(elector.api, LEASE_API, "Lease", elector.namespace, elector.name)
    assert lease is not None
    return lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]


async def test_the_first_replica_creates_namespace_and_lease_a_second_stands_by(
    electors: Electors,
) -> None:
    first, second = electors("first"), electors("second")
    assert await first.try_acquire()  # the namespace did not exist: it was created
    assert first.is_leader
    assert fence.remaining() > 0  # armed until the renewal's deadline
    assert not await second.try_acquire()  # held, and renewed moments ago
    assert await first.try_acquire()  # the holder renews
    assert await _holder(first) == ("first", 0)


async def test_of_two_replicas_racing_for_a_fresh_lease_exactly_one_wins(
    electors: Electors,
) -> None:
    racers = [electors(f"racer-{n}") for n in range(4)]
    won = await asyncio.gather(*(r.try_acquire() for r in racers))
    assert sorted(won) == [False, False, False, True]
    winner = racers[won.index(True)]
    assert (await _holder(winner))[0] == winner.identity


async def test_a_lease_that_stops_changing_is_taken_over_after_its_duration(
    electors: Electors,
) -> None:
    old, standby = electors("old", duration=2.0), electors("standby", duration=2.0)
    assert await old.try_acquire()
    fence.disarm()  # the old replica is another process, frozen from here on
    assert not await standby.try_acquire()  # seen changing just now: wait a duration
    await asyncio.sleep(2.3)
    assert await standby.try_acquire()
    assert await _holder(standby) == ("standby", 1)  # one transition
    # The old replica's next renewal finds another holder: it must stop.
    assert not await old.try_acquire()


async def test_two_takeovers_of_one_expired_lease_one_wins(electors: Electors) -> None:
    old = electors("old", duration=2.0)
    assert await old.try_acquire()
    fence.disarm()
    standbys = [electors(f"standby-{n}", duration=2.0) for n in range(3)]
    for standby in standbys:
        assert not await standby.try_acquire()  # each starts its own clock on the Lease
    await asyncio.sleep(2.3)
    # All read the same expired Lease and replace it: the apiserver takes one replace for
    # that resourceVersion and refuses the others with 409.
    won = await asyncio.gather(*(s.try_acquire() for s in standbys))
    assert won.count(True) == 1
    assert (await _holder(standbys[won.index(True)]))[0].startswith("standby-")


async def test_a_clean_release_hands_over_at_once(electors: Electors) -> None:
    leader, standby = electors("leader"), electors("standby")
    assert await leader.try_acquire()
    await leader.release()
    assert not leader.is_leader
    fence.disarm()
    assert await standby.try_acquire()  # no holder: no need to wait for a duration
    assert await _holder(standby) == ("standby", 1)
    await leader.release()  # not the leader any more: nothing to release


async def test_acquire_waits_through_an_unreachable_apiserver(
    electors: Electors, caplog: pytest.LogCaptureFixture
) -> None:
    lost = electors("lost", server="https://127.0.0.1:1")
    with (
        caplog.at_level(logging.WARNING, logger="coachops_operator.leader"),
        pytest.raises(TimeoutError),
    ):
        await asyncio.wait_for(lost.acquire(retry_period=0.1), timeout=1.0)
    assert not lost.is_leader
    assert caplog.text.count("lease:") >= 2  # each failed try logged, then tried again
