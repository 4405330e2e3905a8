"""The safety alert e-mail: a link and ids, nothing of the message, nothing unchecked."""

from __future__ import annotations

import uuid

import pytest

from coachops_runtime.mail.templates import TemplateError, render


def test_the_alert_links_the_conversation_and_names_the_category() -> None:
    event, conversation = uuid.uuid4(), uuid.uuid4()
    mail = render(
        "safety_alert",
        {
            "event_id": str(event),
            "conversation_id": str(conversation),
            "program": "run-club",
            "category": "medical_emergency",
        },
        "https://hub.example.com/",
    )
    assert mail.subject == "Safety alert in run-club: please check a conversation"
    assert f"https://hub.example.com/conversations/{conversation}" in mail.text
    assert f'href="https://hub.example.com/conversations/{conversation}"' in mail.html
    assert "a medical emergency" in mail.text
    assert str(event) in mail.text
    assert f"POST /v1/conversations/{conversation}/resume" in mail.text


@pytest.mark.parametrize(
    "change",
    [
        {"category": "<script>"},
        {"conversation_id": "not-an-id"},
        {"program": "x" * 64},
        {"message": "I want to..."},  # extra keys are ignored, never rendered
    ],
)
def test_payloads_that_do_not_fit_are_refused_without_quoting(change: dict[str, str]) -> None:
    payload = {
        "event_id": str(uuid.uuid4()),
        "conversation_id": str(uuid.uuid4()),
        "program": "p",
        "category": "abuse",
        **change,
    }
    if "message" in change:
        mail = render("safety_alert", payload, "https://x")
        assert "I want to" not in mail.text + mail.html
        return
    with pytest.raises(TemplateError) as raised:
        render("safety_alert", payload, "https://x")
    for value in change.values():
        assert value not in str(raised.value)
