"""Status reports as the SMS and WhatsApp adapters parse them: what is recorded, what is
acknowledged and left, what is malformed."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from coachops_devstack.standins import signers
from coachops_runtime.channels.adapter import HookRequest, MalformedHookError, StatusUpdate
from coachops_runtime.channels.sms.adapter import SmsAdapter
from coachops_runtime.channels.whatsapp.adapter import WhatsAppAdapter


def request(body: bytes) -> HookRequest:
    return HookRequest("POST", "http://runtime/v1/hooks/x/y", {}, {}, body)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("queued", "", []),
        ("sending", "", []),
        ("sent", "", [StatusUpdate("SM1", "sent")]),
        ("Delivered", "", [StatusUpdate("SM1", "delivered")]),
        ("undelivered", "30006", [StatusUpdate("SM1", "failed", "Twilio error 30006")]),
        ("canceled", "", [StatusUpdate("SM1", "failed")]),
    ],
)
def test_twilio_status_callbacks(status: str, error: str, expected: list[StatusUpdate]) -> None:
    params = signers.twilio_status("SM1", status, "AC1", error)
    parsed = SmsAdapter("http://twilio").parse(request(urlencode(params).encode()))
    assert parsed.messages == []
    assert parsed.statuses == expected


def test_a_twilio_message_with_a_status_field_is_still_a_message() -> None:
    params = {**signers.twilio_sms("SM2", "+1555", "+1666", "hi", "AC1"), "MessageStatus": "x"}
    parsed = SmsAdapter("http://twilio").parse(request(urlencode(params).encode()))
    assert [m.text for m in parsed.messages] == ["hi"]
    with pytest.raises(MalformedHookError):
        SmsAdapter("http://twilio").parse(request(b"MessageStatus=sent"))


def test_whatsapp_statuses_next_to_messages() -> None:
    payload = signers.whatsapp_status("wamid.1", "read", "49151", "1")
    value = payload["entry"][0]["changes"][0]["value"]
    value["statuses"] += [
        "not an object",
        {"id": "wamid.2", "status": "deleted"},
        {"id": 3, "status": "sent"},
        {"id": "wamid.4", "status": "failed", "errors": [{"code": 131026, "title": "Nope"}]},
    ]
    text = signers.whatsapp_text("wamid.9", "49151", "hello", "1")
    payload["entry"].append(text["entry"][0])
    parsed = WhatsAppAdapter("http://wa").parse(request(json.dumps(payload).encode()))
    assert [m.text for m in parsed.messages] == ["hello"]
    assert parsed.statuses == [
        StatusUpdate("wamid.1", "read"),
        StatusUpdate("wamid.4", "failed", "131026 Nope"),
    ]
