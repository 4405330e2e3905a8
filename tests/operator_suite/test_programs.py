"""CoachingPrograms come alive: model pulls, channel wiring, schedules, Ready as a conjunction.

Against the real apiserver, PostgreSQL, Ollama and the loopback model registry (blob
downloads paced to 1 MiB/s, so a pull of a few MB shows its progress).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from cryptography.fernet import Fernet
from kubernetes_asyncio import client

from coachops_crds import constants as c
from tests.conftest import Cluster
from tests.operator_suite.conftest import (
    WEBHOOK_BASE,
    Kube,
    Models,
    Operator,
    condition,
    eventually,
    wait_ready,
)

DEFAULT_CHAT = "coachops/tiny-chat:latest"
DEFAULT_EMBEDDING = "coachops/minilm:latest"


async def _creator_allowing(kube: Kube, creators: list[str], name: str, *chat: str) -> None:
    creators.append(name)
    await kube.create_creator(
        name, models={"chat": [DEFAULT_CHAT, *chat], "embedding": [DEFAULT_EMBEDDING]}
    )
    await wait_ready(kube, name)


async def _condition_is(
    kube: Kube, creator: str, program: str, type_: str, **expected: str
) -> dict[str, Any] | None:
    obj = await kube.program(creator, program)
    found = condition(obj, type_)
    return obj if all(found.get(k) == v for k, v in expected.items()) else None


async def _watch_percent(
    kube: Kube, creator: str, program: str, seen: list[int], stop: asyncio.Event
) -> None:
    # Until told to stop and 100 was seen: the last poll may predate the final patch.
    while not (stop.is_set() and seen and seen[-1] == 100):
        obj = await kube.program(creator, program)
        if obj is not None and "modelPullPercent" in obj.get("status", {}):
            percent = obj["status"]["modelPullPercent"]
            if not seen or seen[-1] != percent:
                seen.append(percent)
        await asyncio.sleep(0.1)


def _ready_check(
    kube: Kube, creator: str, program: str
) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def check() -> dict[str, Any] | None:
        return await _condition_is(kube, creator, program, "Ready", status="True")

    return check


def _monotonic(values: list[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


async def test_two_programs_share_one_pull_and_report_rising_progress(
    operator: Operator,
    kube: Kube,
    models: Models,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    model = await models.push_unique(padding=3 * 2**20)  # ~5 MB: ~5 s at 1 MiB/s
    repository = model.split(":")[0]
    assert f"{models.registry}/{model}" not in await models.present()
    name = new_creator_name("pull")
    await _creator_allowing(kube, creators, name, model)

    stop = asyncio.Event()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    watchers = [
        asyncio.create_task(_watch_percent(kube, name, program, seen[program], stop))
        for program in seen
    ]
    await asyncio.gather(
        *(kube.create_program(name, program, model={"chat": model}) for program in seen)
    )
    try:
        for program in seen:
            obj = await eventually(_ready_check(kube, name, program), 90)
            assert condition(obj, "ModelReady")["reason"] == "Ready"
            assert obj["status"]["modelPullPercent"] == 100
    finally:
        stop.set()
        _, pending = await asyncio.wait(watchers, timeout=10)
        for task in pending:
            task.cancel()

    # One download of each blob, though two programs asked at the same time.
    gets = models.blob_gets(repository)
    assert gets, models.registry_log()[-2000:]
    assert all(count == 1 for count in gets.values()), gets
    # Progress rose, never fell, and was seen between the ends.
    for program, values in seen.items():
        assert _monotonic(values), (program, values)
        assert values[-1] == 100, (program, values)
        assert any(0 < v < 100 for v in values), (program, values)
    namespace = c.creator_namespace(name)
    for program in seen:

        async def posted(program: str = program) -> set[str]:
            found = await kube.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={program}"
            )
            reasons = {e.reason for e in found.items}
            return reasons if {"ModelPulling", "ModelPulled"} <= reasons else set()

        try:
            await eventually(posted, 30)
        except AssertionError as error:
            log = operator.current.log() if operator.current else ""
            lines = [line for line in log.splitlines() if "pull" in line or "Event" in line]
            raise AssertionError(
                f"{error}; {program}'s log lines:\n" + "\n".join(lines[-30:])
            ) from None


async def test_a_model_outside_the_allow_list_is_refused(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("allow")
    await _creator_allowing(kube, creators, name)
    await kube.create_program(name, "greedy", model={"chat": "coachops/huge:70b"})
    obj = await eventually(
        lambda: _condition_is(kube, name, "greedy", "ModelReady", reason="ModelNotAllowed"), 30
    )
    assert "coachops/huge:70b" in condition(obj, "ModelReady")["message"]
    assert condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "Ready")["reason"] == "ModelNotAllowed"
    # Once the Creator allows it, the operator tries to pull it (the registry lacks it).
    await kube.patch_creator(name, {"models": {"chat": [DEFAULT_CHAT, "coachops/huge:70b"]}})
    await eventually(
        lambda: _condition_is(kube, name, "greedy", "ModelReady", reason="PullFailed"), 60
    )


async def test_a_model_the_registry_lacks_fails_with_the_registrys_error(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    missing = "coachops/no-such-model:latest"
    name = new_creator_name("missing")
    await _creator_allowing(kube, creators, name, missing)
    await kube.create_program(name, "lost", model={"chat": missing})
    obj = await eventually(
        lambda: _condition_is(kube, name, "lost", "ModelReady", reason="PullFailed"), 60
    )
    message = condition(obj, "ModelReady")["message"]
    assert "file does not exist" in message, message
    assert condition(obj, "Ready")["reason"] == "PullFailed"
    events = await kube.reasons_eventually("lost", {"ModelPullFailed"})
    assert "ModelPullFailed" in events


async def test_the_registry_stopped_mid_pull_then_back_recovers_by_itself(
    operator: Operator,
    kube: Kube,
    models: Models,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    model = await models.push_unique(padding=8 * 2**20)  # ~10 s at 1 MiB/s
    name = new_creator_name("outage")
    await _creator_allowing(kube, creators, name, model)
    # Ollama retries a registry that is gone for about a minute (1, 2 ... 32 s apart) before
    # it reports an error; the operator's stall bound ends the attempt sooner.
    await operator.restart(COACHOPS_OPERATOR_MODEL_PULL_STALL="3")
    try:
        await _registry_outage(kube, models, name, model)
    finally:
        await operator.restart()


async def _registry_outage(kube: Kube, models: Models, name: str, model: str) -> None:
    await kube.create_program(name, "patient", model={"chat": model})

    async def pulling() -> dict[str, Any] | None:
        obj = await kube.program(name, "patient")
        status = (obj or {}).get("status", {})
        busy = condition(obj, "ModelReady").get("reason") == "Pulling"
        return obj if busy and 0 < status.get("modelPullPercent", 0) < 100 else None

    await eventually(pulling, 60, interval=0.1)
    models.stop_registry()
    try:
        obj = await eventually(
            lambda: _condition_is(kube, name, "patient", "ModelReady", reason="PullFailed"),
            150,
        )
        assert condition(obj, "Ready")["status"] == "False"
    finally:
        await models.start_registry()
    obj = await eventually(
        lambda: _condition_is(kube, name, "patient", "Ready", status="True"), 120
    )
    assert obj["status"]["modelPullPercent"] == 100
    assert f"{models.registry}/{model}" in await models.present()


async def test_kill_9_of_the_operator_during_a_pull_the_pull_finishes_after_restart(
    operator: Operator,
    kube: Kube,
    models: Models,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    # A fresh replica (the one that ran the tests before stops cleanly and saves its
    # coverage data): the kill below loses only what this replica measured.
    await operator.restart()
    model = await models.push_unique(padding=6 * 2**20)  # ~8 s at 1 MiB/s
    repository = model.split(":")[0]
    name = new_creator_name("crash")
    await _creator_allowing(kube, creators, name, model)
    await kube.create_program(name, "survivor", model={"chat": model})

    async def pulling() -> bool:
        obj = await kube.program(name, "survivor")
        percent = int((obj or {}).get("status", {}).get("modelPullPercent", 0))
        return 0 < percent < 100

    await eventually(pulling, 60, interval=0.1)
    assert operator.current is not None
    operator.current.kill()
    await operator.start()
    obj = await eventually(
        lambda: _condition_is(kube, name, "survivor", "Ready", status="True"), 120
    )
    assert obj["status"]["modelPullPercent"] == 100
    # Ollama continued the blob the first operator's pull had started: no blob was
    # downloaded from the start twice (a resumed download is at most one more request).
    gets = models.blob_gets(repository)
    assert gets
    assert all(count <= 2 for count in gets.values()), gets


async def test_an_unused_model_is_removed_after_the_grace_period_a_used_one_is_not(
    operator: Operator,
    kube: Kube,
    models: Models,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    model = await models.push_unique(padding=0)
    name = new_creator_name("gc")
    await _creator_allowing(kube, creators, name, model)
    await operator.restart(COACHOPS_OPERATOR_MODEL_GC_GRACE="3")
    try:
        await kube.create_program(name, "brief", model={"chat": model})
        await kube.create_program(name, "steady")  # the default models: stay in use
        for program in ("brief", "steady"):
            await eventually(_ready_check(kube, name, program), 90)
        full = f"{models.registry}/{model}"
        assert full in await models.present()
        await kube.objects.delete_namespaced_custom_object(
            c.GROUP, c.VERSION, c.creator_namespace(name), c.PROGRAM_PLURAL, "brief"
        )

        async def removed() -> bool:
            return full not in await models.present()

        await eventually(removed, 30)
        present = await models.present()
        assert f"{models.registry}/{DEFAULT_CHAT}" in present
        assert f"{models.registry}/{DEFAULT_EMBEDDING}" in present
        assert operator.current is not None
        assert f"model {full} removed from Ollama" in operator.current.log()
    finally:
        await operator.restart()


# ---------------------------------------------------------------- channels


async def _put_secret(kube: Kube, namespace: str, name: str, data: dict[str, str]) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        string_data=data,
    )
    try:
        await kube.core.read_namespaced_secret(name, namespace)
    except client.exceptions.ApiException:
        await kube.core.create_namespaced_secret(namespace, body)
        return
    await kube.core.replace_namespaced_secret(name, namespace, body)


async def test_channel_secrets_are_checked_copied_encrypted_and_rotated(
    operator: Operator,
    kube: Kube,
    models: Models,
    cluster: Cluster,
    superuser: asyncpg.Connection,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("chan")
    await _creator_allowing(kube, creators, name)
    namespace = c.creator_namespace(name)
    await _put_secret(kube, namespace, "tg", {"bot-token": "123:first-token"})
    await kube.create_program(
        name,
        "chatty",
        channels=[{"type": "web"}, {"type": "telegram", "secretRef": "tg"}],
    )
    obj = await eventually(
        lambda: _condition_is(kube, name, "chatty", "ChannelsReady", status="False"), 30
    )
    message = condition(obj, "ChannelsReady")["message"]
    assert "webhook-secret" in message, message
    assert "Secret tg" in message, message
    assert "first-token" not in json.dumps(obj)
    # Once the models are there (the first program of a run pulls the chat model), the
    # missing key is what keeps the program from Ready.
    obj = await eventually(
        lambda: _condition_is(kube, name, "chatty", "Ready", reason="SecretMissing"), 60
    )
    program_id = c.program_id(name, "chatty")
    assert obj["status"]["endpoints"] == {
        "telegram": f"{WEBHOOK_BASE}/v1/hooks/telegram/{program_id}"
    }

    added = time.monotonic()
    await _put_secret(
        kube, namespace, "tg", {"bot-token": "123:first-token", "webhook-secret": "s3cret"}
    )
    await eventually(lambda: _condition_is(kube, name, "chatty", "Ready", status="True"), 30)
    assert time.monotonic() - added < 30

    async def stored() -> bytes | None:
        found: bytes | None = await superuser.fetchval(
            "SELECT ciphertext FROM channel_credentials WHERE program_id = $1"
            " AND channel = 'telegram'",
            program_id,
        )
        return found

    ciphertext = await eventually(stored, 10)
    assert b"first-token" not in ciphertext
    assert b"s3cret" not in ciphertext
    fernet = Fernet(models.channel_key)
    assert json.loads(fernet.decrypt(ciphertext)) == {
        "bot-token": "123:first-token",
        "webhook-secret": "s3cret",
    }

    # A rotation reaches the database within 30 s (the re-check reads the Secret again).
    rotated = time.monotonic()
    await _put_secret(
        kube, namespace, "tg", {"bot-token": "123:second-token", "webhook-secret": "s3cret"}
    )

    async def re_copied() -> bool:
        data = await stored()
        if data is None:
            return False
        return bool(json.loads(fernet.decrypt(data))["bot-token"] == "123:second-token")

    await eventually(re_copied, 30)
    assert time.monotonic() - rotated < 30

    # A Secret deleted under a program is found by the periodic re-check, which writes the
    # status and posts the Warning (no change of the program's own for a handler to see).
    async def missing_events() -> int:
        return sum(1 for _, reason, _ in await kube.events("chatty") if reason == "SecretMissing")

    before = await missing_events()
    await kube.core.delete_namespaced_secret("tg", namespace)
    await eventually(
        lambda: _condition_is(kube, name, "chatty", "Ready", reason="SecretMissing"), 30
    )

    async def warned() -> bool:
        return await missing_events() > before

    await eventually(warned, 15)
    await _put_secret(
        kube, namespace, "tg", {"bot-token": "123:second-token", "webhook-secret": "s3cret"}
    )
    await eventually(lambda: _condition_is(kube, name, "chatty", "Ready", status="True"), 30)

    # kubectl get cpg shows model, pull %, chunks and Ready.
    listed = cluster.kubectl("get", "cpg", "-n", namespace).stdout
    header = listed.splitlines()[0].split()
    assert header[:6] == ["NAME", "MODEL", "PULL", "%", "CHUNKS", "READY"], listed
    row = next(line for line in listed.splitlines() if line.startswith("chatty")).split()
    assert row[1:5] == [DEFAULT_CHAT, "100", "0", "True"], listed
    # A disabled channel loses its copied credentials and its endpoint.
    await kube.patch_program(
        name,
        "chatty",
        {
            "channels": [
                {"type": "web"},
                {"type": "telegram", "secretRef": "tg", "enabled": False},
            ]
        },
    )

    async def unwired() -> bool:
        obj = await kube.program(name, "chatty")
        endpoints = (obj or {}).get("status", {}).get("endpoints", {})
        return not endpoints and await stored() is None

    await eventually(unwired, 30)

    # A program row that went missing is copied again by the periodic re-check.
    await superuser.execute("DELETE FROM programs WHERE program_id = $1", program_id)

    async def row_back() -> bool:
        found = await superuser.fetchval(
            "SELECT generation FROM programs WHERE program_id = $1", program_id
        )
        return found is not None

    await eventually(row_back, 30)
    logs = operator.current.log() if operator.current else ""
    assert "second-token" not in logs
    assert "s3cret" not in logs
    assert base64.b64encode(b"s3cret").decode() not in logs


# ---------------------------------------------------------------- schedules


async def test_the_provider_api_key_is_checked_copied_encrypted_rotated_and_removed(
    operator: Operator,
    kube: Kube,
    models: Models,
    superuser: asyncpg.Connection,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("key")
    await _creator_allowing(kube, creators, name)
    namespace = c.creator_namespace(name)
    model = {
        "provider": "openai",
        "chat": DEFAULT_CHAT,
        "baseUrl": "http://127.0.0.1:9/v1",
        "apiKeySecretRef": "llm",
    }
    await kube.create_program(name, "keyed", model=model)
    obj = await eventually(
        lambda: _condition_is(kube, name, "keyed", "ModelReady", reason="ProviderKeyMissing"),
        60,
    )
    assert "Secret llm (apiKeySecretRef) not found" in condition(obj, "ModelReady")["message"]
    program_id = c.program_id(name, "keyed")
    fernet = Fernet(models.channel_key)

    async def stored_key() -> str | None:
        found = await superuser.fetchval(
            "SELECT ciphertext FROM provider_credentials WHERE program_id = $1", program_id
        )
        return None if found is None else str(json.loads(fernet.decrypt(found))["api-key"])

    await _put_secret(kube, namespace, "llm", {"api-key": "sk-first"})
    await eventually(lambda: _condition_is(kube, name, "keyed", "ModelReady", status="True"), 30)
    assert await eventually(stored_key, 10) == "sk-first"
    ciphertext = await superuser.fetchval(
        "SELECT ciphertext FROM provider_credentials WHERE program_id = $1", program_id
    )
    assert b"sk-first" not in ciphertext
    obj = await kube.program(name, "keyed")
    assert "sk-first" not in json.dumps(obj)

    # A rotated Secret is copied again by the periodic re-check.
    await _put_secret(kube, namespace, "llm", {"api-key": "sk-second"})

    async def rotated() -> bool:
        return await stored_key() == "sk-second"

    await eventually(rotated, 30)

    # Without a reference the copy goes.
    await kube.patch_program(name, "keyed", {"model": {"apiKeySecretRef": None}})

    async def removed() -> bool:
        return await stored_key() is None

    await eventually(removed, 30)


async def test_a_bad_cron_expression_makes_the_schedule_not_ready(
    operator: Operator,
    kube: Kube,
    creators: list[str],
    new_creator_name: Callable[[str], str],
) -> None:
    name = new_creator_name("cron")
    await _creator_allowing(kube, creators, name)
    await kube.create_program(
        name, "early", proactive={"checkIns": [{"name": "dawn", "cron": "61 9 * * *"}]}
    )
    obj = await eventually(
        lambda: _condition_is(kube, name, "early", "ScheduleReady", reason="InvalidSchedule"), 30
    )
    message = condition(obj, "ScheduleReady")["message"]
    assert "61 9 * * *" in message, message
    assert "dawn" in message, message
    assert condition(obj, "Ready")["reason"] == "InvalidSchedule"
    await kube.patch_program(
        name, "early", {"proactive": {"checkIns": [{"name": "dawn", "cron": "0 9 * * MON-FRI"}]}}
    )
    obj = await eventually(lambda: _condition_is(kube, name, "early", "Ready", status="True"), 30)
    assert condition(obj, "ScheduleReady")["reason"] == "Valid"
