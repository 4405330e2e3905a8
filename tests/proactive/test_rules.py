"""The send-time rules: consent (STOP and START through the real SMS webhook), suspended
tenants, paused and unenrolled end users, paused conversations, WhatsApp's 24-hour window;
and the template text when the AI provider is down."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import REGISTRY

from coachops_devstack.standins import signers
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.kit.settings import Settings
from coachops_runtime.proactive.content import ContentWriter
from coachops_runtime.proactive.engine import Engine
from coachops_runtime.proactive.scheduler import ProactivePoller
from coachops_runtime.proactive.settings import ProactiveSettings
from tests.proactive.conftest import World

NO_QUIET = {"start": "00:00", "end": "00:00"}


def outcomes(outcome: str) -> float:
    """The worker's count of check-in schedules handled with ``outcome``."""
    found = REGISTRY.get_sample_value(
        "coachops_proactive_outcomes_total", {"kind": "check_in", "outcome": outcome}
    )
    return found or 0.0


def lag_samples() -> float:
    return REGISTRY.get_sample_value("coachops_proactive_lag_seconds_count") or 0.0


def daily(hour: int, content: str = "template", **extra: object) -> dict[str, object]:
    return {
        "checkIns": [
            {
                "name": "daily",
                "cron": f"0 {hour} * * *",
                "content": content,
                "template": "Hi {name}, how did you sleep?",
            }
        ],
        "quietHours": NO_QUIET,
        **extra,
    }


async def _sms(world: World, program: uuid.UUID, values: dict[str, str], text: str) -> None:
    params = signers.twilio_sms(
        f"SM{uuid.uuid4().hex}", "+15551230000", "+15550001111", text, values["account-sid"]
    )
    path = f"/v1/hooks/sms/{program}"
    body, headers = signers.twilio(values["auth-token"], f"http://runtime{path}", params)
    response = await world.client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text


async def test_stop_stops_proactive_messages_and_start_resumes_them(world: World) -> None:
    world.clock.set(datetime.now(UTC).replace(microsecond=0))
    creator = await world.creator()
    program = await world.program(creator, daily(10), [{"type": "sms", "secretRef": "creds"}])
    values = await world.wire(creator, program, "sms")
    await _sms(world, program, values, "hello coach")  # enrols the sender
    (user,) = await world.rows("SELECT end_user_id FROM enrolments WHERE program_id = $1", program)
    user_id = user["end_user_id"]

    def texts() -> list[str]:
        return [r.text for r in world.received("+15551230000", "sms")]

    await world.run_until(world.clock.now() + timedelta(days=1), timedelta(hours=1))
    await world.deliver()
    assert texts()[0].endswith("how did you sleep?")
    assert len(texts()) == 1

    skipped = outcomes("no_consent")
    await _sms(world, program, values, "STOP")
    await world.run_until(world.clock.now() + timedelta(days=2), timedelta(hours=1))
    assert outcomes("no_consent") - skipped == 2  # the metrics count what the decisions say
    await world.deliver()
    assert len(texts()) == 2  # the STOP answer, no check-in
    assert "unsubscribed" in texts()[1]
    reasons = [d["reason"] for d in await world.decisions(user_id)]
    assert reasons == ["scheduled", "no_consent", "no_consent"]

    await _sms(world, program, values, "START")
    await world.run_until(world.clock.now() + timedelta(days=1), timedelta(hours=1))
    await world.deliver()
    assert len(texts()) == 4
    assert texts()[3].startswith("Hi ")
    assert [d["reason"] for d in await world.decisions(user_id)][-1] == "scheduled"


async def test_suspended_paused_unenrolled_and_paused_conversations_get_nothing(
    world: World,
) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, daily(9))
    normal = await world.end_user(creator, program)
    quiet = await world.end_user(creator, program)  # conversation paused by the creator
    gone = await world.end_user(creator, program)  # leaves the program
    resting = await world.end_user(creator, program)  # enrolment paused
    await world.tenants.owner(
        creator.creator_id,
        "INSERT INTO conversations (creator_id, program_id, end_user_id, channel, ai_paused)"
        " VALUES ($1, $2, $3, 'web', true)",
        creator.creator_id,
        program,
        quiet,
    )
    suspended = await world.creator()
    other = await world.program(suspended, daily(9))
    stranded = await world.end_user(suspended, other)
    await world.tick()
    await world.tenants.owner(
        suspended.creator_id,
        "UPDATE creators SET suspended = true WHERE creator_id = $1",
        suspended.creator_id,
    )
    for user, status in ((gone, "left"), (resting, "paused")):
        await world.tenants.owner(
            creator.creator_id,
            "UPDATE enrolments SET status = $2 WHERE end_user_id = $1",
            user,
            status,
        )
    await world.run_until(datetime(2026, 6, 1, 10, 0, tzinfo=UTC))

    async def reasons(user: uuid.UUID) -> list[str]:
        return [d["reason"] for d in await world.decisions(user)]

    assert await reasons(normal) == ["scheduled"]
    assert await reasons(quiet) == ["conversation_paused"]
    assert await reasons(gone) == ["unenrolled"]
    assert await reasons(resting) == ["paused"]
    assert await reasons(stranded) == ["tenant_suspended"]
    for user in (quiet, gone, resting, stranded):
        assert await world.sent_messages(user) == []
    # The unenrolled end user's schedule is gone; the others wait for tomorrow.
    left = await world.rows("SELECT 1 FROM proactive_schedules WHERE end_user_id = $1", gone)
    assert left == []


async def test_whatsapp_outside_24_hours_needs_a_template(world: World) -> None:
    world.clock.set(datetime(2026, 6, 3, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    plain = await world.program(
        creator, daily(9), [{"type": "whatsapp", "secretRef": "creds"}], name="plain"
    )
    templated = await world.program(
        creator,
        daily(9),
        [
            {
                "type": "whatsapp",
                "secretRef": "creds",
                "template": {"name": "coach_checkin", "language": "en_US"},
            }
        ],
        name="templated",
    )
    users = {}
    for program, number in ((plain, "4915100000001"), (templated, "4915100000002")):
        await world.wire(creator, program, "whatsapp")
        user = await world.end_user(creator, program)
        two_days_ago = world.clock.now() - timedelta(days=2)
        await world.identity(creator, program, user, "whatsapp", number, two_days_ago)
        users[program] = (user, number)
    await world.run_until(datetime(2026, 6, 3, 10, 0, tzinfo=UTC))
    await world.deliver()
    user, number = users[plain]
    assert [d["reason"] for d in await world.decisions(user)] == ["whatsapp_window"]
    assert world.received(number, "whatsapp") == []
    user, number = users[templated]
    assert [d["reason"] for d in await world.decisions(user)] == ["scheduled"]
    (sent,) = world.received(number, "whatsapp")
    assert sent.payload["template"]["name"] == "coach_checkin"


async def test_the_template_goes_out_on_time_when_the_ai_provider_is_down(
    world: World,
    runtime_settings: Settings,
    pool: asyncpg.Pool,
    proactive_settings: ProactiveSettings,
) -> None:
    # An Ollama that answers every request with a 500.
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text=json.dumps({"error": "model crashed"}))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = runtime_settings.model_copy(update={"ollama_url": f"http://127.0.0.1:{port}"})
    writer = ContentWriter(settings, AiSettings(), timeout=5)
    world.scheduler = ProactivePoller(
        pool, proactive_settings, Engine(proactive_settings, writer), world.clock
    )
    try:
        world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
        creator = await world.creator()
        program = await world.program(creator, daily(9, content="ai"))
        user = await world.end_user(creator, program, name="Sam")
        await world.run_until(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
        (message,) = await world.sent_messages(user)
        assert message["body"] == "Hi Sam, how did you sleep?"
        assert message["created_at"] == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    finally:
        await writer.close()
        await runner.cleanup()


class _Faulty(Engine):
    """Fails on one end user's schedules while ``broken`` holds them."""

    def __init__(self, settings: ProactiveSettings, broken: set[uuid.UUID]) -> None:
        super().__init__(settings, None)
        self.broken = broken

    async def handle(self, repo: Any, row: Any, now: datetime) -> str:
        if row["end_user_id"] in self.broken:
            raise ValueError("unreadable schedule")
        return await super().handle(repo, row, now)


async def test_one_failing_schedule_holds_back_nothing_else(
    world: World, pool: asyncpg.Pool, proactive_settings: ProactiveSettings
) -> None:
    world.clock.set(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))
    creator = await world.creator()
    program = await world.program(creator, daily(9))
    bad = await world.end_user(creator, program)
    good = await world.end_user(creator, program)
    engine = _Faulty(proactive_settings, {bad})
    world.scheduler = ProactivePoller(pool, proactive_settings, engine, world.clock)
    sent, failed, lags = outcomes("sent"), outcomes("failed"), lag_samples()
    await world.run_until(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    # Counted once each, after the commit: the optimistic pass that failed counts nothing.
    assert outcomes("sent") - sent == 1
    assert outcomes("failed") - failed >= 1
    assert lag_samples() > lags
    assert len(await world.sent_messages(good)) == 1
    assert await world.sent_messages(bad) == []
    (row,) = await world.rows("SELECT due_at FROM proactive_schedules WHERE end_user_id = $1", bad)
    # Tried every five minutes (the last at 09:00), never planned while it failed.
    assert row["due_at"] == datetime(2026, 6, 1, 9, 5, tzinfo=UTC)
    engine.broken.clear()  # readable again: planned from now on, the next morning
    await world.run_until(datetime(2026, 6, 2, 9, 15, tzinfo=UTC))
    assert len(await world.sent_messages(bad)) == 1
    assert len(await world.sent_messages(good)) == 2
