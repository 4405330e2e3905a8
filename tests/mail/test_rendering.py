"""Rendering outbox rows into messages, and the retry delay: pure logic, no servers."""

from __future__ import annotations

import uuid

import pytest

from coachops_runtime.mail.message import build_message
from coachops_runtime.mail.outbox import backoff_seconds
from coachops_runtime.mail.templates import TEMPLATES, TemplateError, render

TOKEN = f"{uuid.uuid4().hex}.{uuid.uuid4().hex}.s3cr3t-Token_value"


@pytest.mark.parametrize(
    ("template", "path", "api"),
    [
        ("verify_email", "/verify", "POST /v1/auth/verify"),
        ("password_reset", "/reset", "POST /v1/auth/password-reset/confirm"),
        ("magic_link", "/chat", "POST /v1/auth/magic-link/redeem"),
    ],
)
def test_link_templates_put_the_token_in_a_link_on_the_base_url(
    template: str, path: str, api: str
) -> None:
    rendered = render(template, {"token": TOKEN, "url": "ignored"}, "https://coach.example/")
    link = f"https://coach.example{path}#{TOKEN}"
    assert link in rendered.text
    assert f'href="{link}"' in rendered.html
    assert api in rendered.text
    assert f'{{"token": "{TOKEN}"' in rendered.text


def test_the_invitation_names_the_creator_and_escapes_it() -> None:
    payload = {"end_user_id": str(uuid.uuid4()), "creator": "Ann <b>&</b>\r\nBcc: x@evil"}
    rendered = render("end_user_invite", payload, "https://coach.example")
    assert rendered.subject == "Ann <b>&</b>  Bcc: x@evil invited you to coaching"
    assert "<b>" not in rendered.html
    assert "Ann &lt;b&gt;&amp;&lt;/b&gt;" in rendered.html


def test_every_template_the_runtime_queues_is_known() -> None:
    assert (
        frozenset(
            {"verify_email", "password_reset", "magic_link", "end_user_invite", "safety_alert"}
        )
        == TEMPLATES
    )


def test_unknown_templates_and_unfit_payloads_are_errors_that_do_not_quote_the_payload() -> None:
    with pytest.raises(TemplateError, match="unknown template 'nope'"):
        render("nope", {"token": TOKEN}, "https://x")
    with pytest.raises(TemplateError) as raised:
        render("verify_email", {"token": TOKEN + " <script>"}, "https://x")
    assert str(raised.value) == "payload does not fit verify_email: token"
    with pytest.raises(TemplateError, match="end_user_id"):
        render("end_user_invite", {"creator": "Ann"}, "https://x")


def test_the_message_carries_a_message_id_of_its_outbox_row_and_both_bodies() -> None:
    email_id = uuid.uuid4()
    rendered = render("verify_email", {"token": TOKEN}, "https://x")
    message = build_message(
        email_id, "coachops <no-reply@mail.example>", "sam@example.com", rendered
    )
    assert message["Message-ID"] == f"<{email_id}@mail.example>"
    assert message["To"] == "sam@example.com"
    assert message["From"] == "coachops <no-reply@mail.example>"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]


def test_an_address_that_cannot_be_a_header_is_a_template_error() -> None:
    rendered = render("verify_email", {"token": TOKEN}, "https://x")
    with pytest.raises(TemplateError):
        build_message(uuid.uuid4(), "a@b.c", "sam@example.com\r\nBcc: x@evil", rendered)


def test_backoff_doubles_up_to_the_cap_with_the_upper_half_random() -> None:
    low = [backoff_seconds(n, 30, 3600, rand=lambda: 0.0) for n in range(1, 10)]
    high = [backoff_seconds(n, 30, 3600, rand=lambda: 1.0) for n in range(1, 10)]
    assert high == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert low == [h / 2 for h in high]
    assert backoff_seconds(10_000, 30, 3600, rand=lambda: 1.0) == 3600
