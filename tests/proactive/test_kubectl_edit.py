"""A check-in's cron and the program's time zone edited with ``kubectl edit`` reach the
scheduler through the real path (apiserver, the operator's copy into PostgreSQL, the
program trigger) and move the next occurrence, with no restart of anything; a time zone
that is no zone name is refused by the apiserver, an unknown one reported by the
operator."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_crds import constants as c
from coachops_devstack.stack import Stack
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.clock import FixedClock
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from tests.conftest import Cluster, kubectl_path
from tests.operator_suite.conftest import (
    Kube,
    OperatorProcess,
    condition,
    crds,
    eventually,
    wait_ready,
)

__all__ = ["crds"]


@pytest.fixture
async def operator(stack: Stack, cluster: Cluster, crds: None) -> AsyncIterator[OperatorProcess]:
    """The operator for this test only: other suites expect no controller on their objects."""
    process = OperatorProcess(
        stack,
        cluster.kubeconfig,
        cluster.workdir,
        {"COACHOPS_CHANNEL_KEY": Fernet.generate_key().decode()},
    ).start()
    try:
        await process.wait_leader()
        yield process
    finally:
        process.stop()


def kubectl_edit(
    cluster: Cluster, namespace: str, name: str, old: str, new: str, tmp: Path
) -> None:
    """``kubectl edit`` with an editor that replaces ``old`` by ``new`` in the YAML."""
    editor = tmp / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        f"assert {old!r} in text\n"
        f"open(path, 'w').write(text.replace({old!r}, {new!r}))\n"
    )
    subprocess.run(
        [
            str(kubectl_path()),
            f"--kubeconfig={cluster.kubeconfig}",
            "edit",
            f"{c.PROGRAM_PLURAL}.{c.GROUP}/{name}",
            "-n",
            namespace,
        ],
        env={**os.environ, "KUBE_EDITOR": f"python3 {editor}"},
        check=True,
        capture_output=True,
        timeout=60,
    )


async def test_kubectl_edit_of_the_cron_and_the_zone_moves_the_next_occurrence(
    stack: Stack, cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    kube = Kube(cluster)
    name = f"pa-{uuid.uuid4().hex[:8]}"
    tenant = c.tenant_id(name)
    await kube.create_creator(name)
    try:
        await wait_ready(kube, name, timeout=90)
        await kube.create_program(
            name,
            "sleep",
            proactive={
                "checkIns": [{"name": "morning", "cron": "0 8 * * *", "content": "template"}],
                "quietHours": {"start": "00:00", "end": "00:00"},
                "timeZone": "Asia/Tokyo",
            },
        )
        program = c.program_id(name, "sleep")
        owner = await asyncpg.connect(stack.postgres.owner_dsn)
        try:

            async def stored_proactive() -> Any:
                async with owner.transaction():
                    await owner.execute(
                        "SELECT set_config('coachops.tenant_id', $1, true)", str(tenant)
                    )
                    spec = await owner.fetchval(
                        "SELECT spec FROM programs WHERE program_id = $1", program
                    )
                if spec is None:
                    return None
                spec = json.loads(spec) if isinstance(spec, str) else spec
                return spec["proactive"]

            async def stored_cron() -> Any:
                proactive = await stored_proactive()
                return None if proactive is None else proactive["checkIns"][0]["cron"]

            async def copied() -> bool:
                return bool(await stored_cron() == "0 8 * * *")

            await eventually(copied, 60)
            async with owner.transaction():
                await owner.execute(
                    "SELECT set_config('coachops.tenant_id', $1, true)", str(tenant)
                )
                user = await owner.fetchval(
                    "INSERT INTO end_users (creator_id, display_name, time_zone)"
                    " VALUES ($1, 'Robin', 'Europe/Berlin') RETURNING end_user_id",
                    tenant,
                )
                # No zone of their own: the program's applies.
                unset = await owner.fetchval(
                    "INSERT INTO end_users (creator_id, display_name)"
                    " VALUES ($1, 'Sam') RETURNING end_user_id",
                    tenant,
                )
                for enrolled in (user, unset):
                    await owner.execute(
                        "INSERT INTO enrolments (creator_id, end_user_id, program_id)"
                        " VALUES ($1, $2, $3)",
                        tenant,
                        enrolled,
                        program,
                    )

            settings = Settings(
                environment="development",
                database_url=stack.postgres.runtime_dsn,
                redis_url=stack.redis.url,
                kubeconfig=None,
            )
            pool = await create_pool(settings.model_copy(update={"db_pool_size": 2}))
            clock = FixedClock(datetime(2026, 6, 1, 4, 0, tzinfo=UTC))
            proactive = ProactiveSettings()
            scheduler = ProactivePoller(pool, proactive, Engine(proactive, None), clock)
            try:

                async def occurrence(of: uuid.UUID = user) -> Any:
                    await scheduler.poll()
                    async with owner.transaction():
                        await owner.execute(
                            "SELECT set_config('coachops.tenant_id', $1, true)", str(tenant)
                        )
                        return await owner.fetchval(
                            "SELECT occurrence FROM proactive_schedules WHERE end_user_id = $1",
                            of,
                        )

                # 08:00 in Berlin (summer time) is 06:00 UTC; 08:00 in Tokyo 23:00 UTC.
                assert await occurrence() == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
                assert await occurrence(unset) == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
                kubectl_edit(
                    cluster, c.creator_namespace(name), "sleep", "0 8 * * *", "30 6 * * *", tmp_path
                )

                async def edited() -> bool:
                    return bool(await stored_cron() == "30 6 * * *")

                await eventually(edited, 60)
                assert await occurrence() == datetime(2026, 6, 1, 4, 30, tzinfo=UTC)
                assert await occurrence(unset) == datetime(2026, 6, 1, 21, 30, tzinfo=UTC)

                # The program's zone moves the end users without one, and only them.
                kubectl_edit(
                    cluster,
                    c.creator_namespace(name),
                    "sleep",
                    "timeZone: Asia/Tokyo",
                    "timeZone: America/New_York",
                    tmp_path,
                )

                async def zone_edited() -> bool:
                    stored = await stored_proactive() or {}
                    return bool(stored.get("timeZone") == "America/New_York")

                await eventually(zone_edited, 60)
                # 06:30 in New York (summer time) is 10:30 UTC.
                assert await occurrence(unset) == datetime(2026, 6, 1, 10, 30, tzinfo=UTC)
                assert await occurrence() == datetime(2026, 6, 1, 4, 30, tzinfo=UTC)

                with pytest.raises(ApiException) as refused:
                    await kube.patch_program(
                        name, "sleep", {"proactive": {"timeZone": "not a zone; drop table"}}
                    )
                assert refused.value.status == 422
                assert "must be an IANA time zone name" in str(refused.value.body)

                # Shaped like a zone, unknown to the IANA database: the operator says so
                # and keeps the copy the runtime schedules by.
                await kube.patch_program(name, "sleep", {"proactive": {"timeZone": "Mars/Olympus"}})

                async def reported() -> Any:
                    obj = await kube.program(name, "sleep")
                    found = condition(obj, "ScheduleReady")
                    return found if found.get("reason") == "InvalidTimeZone" else None

                schedule_ready = await eventually(reported, 60)
                assert schedule_ready["status"] == "False"
                assert "Mars/Olympus" in schedule_ready["message"]
                assert condition(await kube.program(name, "sleep"), "Synced")["reason"] == (
                    "InvalidSpec"
                )
                assert (await stored_proactive())["timeZone"] == "America/New_York"
                assert await occurrence(unset) == datetime(2026, 6, 1, 10, 30, tzinfo=UTC)
            finally:
                await pool.close()
        finally:
            await owner.close()
    finally:
        await kube.delete_creator(name)

        async def gone() -> bool:
            return await kube.creator(name) is None

        await eventually(gone, 90)
