"""Pure parts of a program's reconcile: schedules, model names and states, channel keys."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from coachops_crds.cron import cron_problem
from coachops_crds.models import CheckIn, Proactive
from coachops_operator import channels, program, schedules
from coachops_operator import conditions as cond
from coachops_operator.model_pulls import ModelState, Phase
from coachops_operator.model_server import has_host, resolve
from coachops_operator.program_models import summarize


@pytest.mark.parametrize("expression", ["0 9 * * *", "*/15 8-18 * * MON-FRI", "0 0 1 1 *"])
def test_good_cron_expressions_pass(expression: str) -> None:
    assert cron_problem(expression) is None
    assert CheckIn(name="a", cron=expression).cron == expression


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("61 9 * * *", "not a valid expression"),
        ("10 9 1 12", "has 4 fields"),
        ("0 9 * * * *", "has 6 fields"),
        ("a b c d e", "not a valid expression"),
        ("0 25 * * *", "not a valid expression"),
    ],
)
def test_bad_cron_expressions_are_refused_with_a_reason(expression: str, says: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None
    assert says in problem
    with pytest.raises(ValidationError) as refused:
        CheckIn(name="a", cron=expression)
    assert says in str(refused.value)


def test_schedule_ready_names_the_bad_check_in() -> None:
    spec = {
        "proactive": {
            "checkIns": [{"name": "ok", "cron": "0 9 * * *"}, {"name": "bad", "cron": "0 9 * *"}]
        }
    }
    found = schedules.observe(spec)
    assert (found.type, found.status, found.reason) == ("ScheduleReady", "False", "InvalidSchedule")
    assert "checkIns[1] (bad)" in found.message
    assert schedules.observe({}).reason == "NoCheckIns"
    assert (
        schedules.observe({"proactive": {"checkIns": spec["proactive"]["checkIns"][:1]}}).status
        == "True"
    )


@pytest.mark.parametrize(
    ("zone", "says"),
    [
        ("Mars/Olympus", "not in the IANA time zone database"),
        ("utc", "not in the IANA time zone database"),
        ("../etc/passwd", "not an IANA time zone name"),
        ("Europe/Berlin ", "not an IANA time zone name"),
    ],
)
def test_an_unknown_program_zone_is_refused_and_reported(zone: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Proactive.model_validate({"timeZone": zone})
    assert says in str(refused.value)
    found = schedules.observe({"proactive": {"timeZone": zone, "checkIns": []}})
    assert (found.type, found.status, found.reason) == ("ScheduleReady", "False", "InvalidTimeZone")
    assert found.message.startswith("spec.proactive.timeZone: ")
    assert says in found.message


@pytest.mark.parametrize(
    "zone", ["Asia/Tokyo", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]
)
def test_a_known_program_zone_passes(zone: str) -> None:
    assert Proactive.model_validate({"timeZone": zone}).time_zone == zone
    assert schedules.observe({"proactive": {"timeZone": zone}}).status == "True"
    assert Proactive().time_zone is None  # unset: UTC


def test_model_names_without_a_host_come_from_the_platform_registry() -> None:
    assert resolve("coachops/tiny-chat:latest", "127.0.0.1:5000") == (
        "127.0.0.1:5000/coachops/tiny-chat:latest"
    )
    assert resolve("llama3:8b", "reg.example:5000") == "reg.example:5000/llama3:8b"
    assert resolve("reg.example/a/b:1", "other:1") == "reg.example/a/b:1"
    assert resolve("localhost/a:1", "other:1") == "localhost/a:1"
    assert resolve("coachops/x:1", "") == "coachops/x:1"
    assert has_host("127.0.0.1:5000/a/b:c")
    assert not has_host("a/b:c")
    assert not has_host("llama3:8b")


def _state(phase: Phase, **fields: object) -> ModelState:
    state = ModelState("reg/m:1", phase=phase)
    for key, value in fields.items():
        setattr(state, key, value)
    return state


def test_model_ready_reports_the_worst_state_and_the_lowest_percent() -> None:
    present = _state(Phase.PRESENT, percent=100)
    pulling = _state(Phase.PULLING, completed=2_500_000, total=5_000_000, percent=50)
    failed = _state(Phase.FAILED, error="file does not exist", attempts=2, percent=30)
    found, percent = summarize([("chat", present), ("embedding", present)])
    assert (found.status, found.reason, percent) == ("True", "Ready", 100)
    found, percent = summarize([("chat", pulling), ("embedding", present)])
    assert (found.reason, percent) == ("Pulling", 50)
    assert "chat model reg/m:1: 2.5 MB of 5.0 MB (50%)" in found.message
    found, percent = summarize([("chat", pulling), ("embedding", failed)])
    assert (found.reason, percent) == ("PullFailed", 30)
    assert "file does not exist" in found.message
    assert "attempt 2" in found.message
    found, percent = summarize([("embedding", present)])  # replies come from elsewhere
    assert (found.reason, percent) == ("Ready", 100)
    found, _ = summarize(
        [("chat", _state(Phase.UNAVAILABLE, error="ClientConnectorError")), ("embedding", present)]
    )
    assert found.reason == "ModelServerUnavailable"
    found, _ = summarize([("chat", _state(Phase.UNKNOWN)), ("embedding", present)])
    assert found.reason == "Checking"


def test_channel_secret_values_fingerprint_and_encryption() -> None:
    secret = {
        "data": {
            "bot-token": base64.b64encode(b"123:abc").decode(),
            "webhook-secret": base64.b64encode(b"w").decode(),
            "other": base64.b64encode(b"ignored").decode(),
        }
    }
    values = channels.secret_values(secret, channels.REQUIRED_KEYS["telegram"])
    assert values == {"bot-token": "123:abc", "webhook-secret": "w"}
    assert channels.secret_values({"data": {"bot-token": "%%%"}}, ("bot-token",)) is None
    assert channels.fingerprint(values) == channels.fingerprint(dict(reversed(values.items())))
    assert channels.fingerprint(values) != channels.fingerprint({**values, "bot-token": "x"})
    key = Fernet.generate_key().decode()
    sealed = channels.encrypt(key, values)
    assert b"123:abc" not in sealed
    assert json.loads(Fernet(key).decrypt(sealed)) == values
    assert channels.endpoint("https://h/", "sms", program.program_id("coachops-a", "p")) == (
        f"https://h/v1/hooks/sms/{program.program_id('coachops-a', 'p')}"
    )


def test_ready_is_the_conjunction_of_the_program_parts() -> None:
    parts = [cond.Observation.true(t, "Fine") for t in cond.PROGRAM_PARTS]
    assert cond.summarize(parts).status == "True"
    parts[2] = cond.Observation.false(cond.MODEL_READY, "Pulling", "50%")
    parts[4] = cond.Observation.false(cond.CHANNELS_READY, "SecretMissing", "tg")
    ready = cond.summarize(parts)
    assert (ready.status, ready.reason) == ("False", "Pulling")
    merged = cond.merge(None, parts, 1)
    back = cond.observations(merged, cond.PROGRAM_PARTS)
    assert [o.reason for o in back] == [p.reason for p in parts]
    unknown = cond.observations([], [cond.SYNCED])[0]
    assert (unknown.status, unknown.reason) == ("Unknown", "Pending")


def test_status_comparison_ignores_transition_times_only() -> None:
    conditions = cond.merge(None, [cond.Observation.true("Ready", "Reconciled", "m")], 1, "t1")
    later = cond.merge(None, [cond.Observation.true("Ready", "Reconciled", "m")], 1, "t2")
    old = {"conditions": conditions, "modelPullPercent": 100, "endpoints": {"sms": "u"}}
    assert program._same(
        old, {"conditions": later, "modelPullPercent": 100, "endpoints": {"sms": "u"}}
    )
    assert not program._same(old, {"conditions": later, "modelPullPercent": 99})
    assert not program._same(old, {"endpoints": {"sms": "u", "slack": "v"}})
    assert program._same(old, {"endpoints": {"sms": "u", "email": None}})
