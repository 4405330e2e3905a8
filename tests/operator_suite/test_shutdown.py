"""SIGTERM stops the leader cleanly: exit code 0, the Lease released, no 'kopf stopped by
itself' (kopf's own signal handlers once made every SIGTERM look like that, after a 5 s
wait for its stop flag)."""

from __future__ import annotations

import signal
import time

from kubernetes_asyncio import client

from tests.operator_suite.conftest import Kube, Operator, eventually


async def test_sigterm_stops_the_leader_with_exit_code_0_and_releases_the_lease(
    operator: Operator, kube: Kube
) -> None:
    leader = await operator.restart()  # a replica whose kopf is surely up and ready
    await eventually(lambda: _log_has(leader.log(), "Activity 'login' succeeded"), 30)
    assert leader.process.popen is not None
    try:
        sent = time.monotonic()
        leader.process.popen.send_signal(signal.SIGTERM)

        async def exited() -> bool:
            return not leader.process.running()

        await eventually(exited, 30, interval=0.05)
        took = time.monotonic() - sent
        print(f"the leader exited {took:.2f} s after SIGTERM")
        assert leader.process.popen.returncode == 0, leader.process.log_tail()
        assert "kopf stopped by itself" not in leader.log()
        lease = await client.CoordinationV1Api(kube.api).read_namespaced_lease(
            "coachops-operator", "coachops-system"
        )
        assert not lease.spec.holder_identity
    finally:
        leader.stop()
        await operator.start()


async def _log_has(log: str, line: str) -> bool:
    return line in log
