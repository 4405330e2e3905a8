"""The worker process serves /metrics on COACHOPS_WORKER_METRICS_PORT: an e-mail it sends
through the real Mailpit is counted, and every coachops series it serves is one the PromQL
test knows as exported."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from coachops_devstack.mailpit import Mailpit
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess
from coachops_runtime.kit.settings import Settings
from tests.mail.conftest import Outbox, outbox, wait_for_mail, worker_env, worker_settings
from tests.observability.exported import exported

__all__ = ["outbox", "worker_settings"]


@pytest.fixture
async def worker_metrics(worker_settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    """A worker process with its metrics port; yields the /metrics URL."""
    port = free_port()
    process = ManagedProcess(
        "metrics-worker",
        [sys.executable, "-m", "coachops_runtime.worker"],
        tmp_path / "worker.log",
        env={**worker_env(worker_settings), "COACHOPS_WORKER_METRICS_PORT": str(port)},
    )
    process.start()

    async def running() -> bool:
        return "worker started" in process.log_path.read_text(errors="replace")

    await process.wait_ready(running, timeout=30)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.stop()


async def test_the_worker_counts_what_it_delivers_and_serves_it(
    outbox: Outbox, worker_metrics: str, mailpit: Mailpit
) -> None:
    creator = await outbox.tenant("metrics")
    to = f"m{uuid.uuid4().hex[:10]}@example.com"
    await outbox.queue(creator, [(to, "verify_email", {"token": "a.b.c"})])
    await wait_for_mail(mailpit, to)

    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(50):  # the count follows the commit that wait_for_mail may outrun
            text = (await http.get(worker_metrics)).text
            if 'coachops_email_deliveries_total{outcome="sent"} 1.0' in text:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(text)

    for family in (
        "coachops_ai_reply_duration_seconds histogram",
        "coachops_ai_first_token_seconds histogram",
        "coachops_channel_deliveries_total counter",
        "coachops_email_deliveries_total counter",
    ):
        assert f"# TYPE {family}" in text
    served = set(re.findall(r"^(coachops_\w+?)(?:\{| )", text, re.MULTILINE))
    assert served
    assert served <= set(exported()), served - set(exported())
