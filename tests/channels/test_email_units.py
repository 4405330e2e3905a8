"""The e-mail channel's pure parts: quoted-reply stripping, the inbound form, signed
unsubscribe tokens, the reply's headers, and the Mailgun adapter's checks."""

from __future__ import annotations

import time
import uuid

import pytest
from aiosmtplib.email import flatten_message
from pydantic import SecretStr

from coachops_devstack.standins import signers
from coachops_runtime.channels.adapter import (
    About,
    DeliveryError,
    HookRejectedError,
    HookRequest,
    MalformedHookError,
    Outgoing,
    StatusUpdate,
    Thread,
)
from coachops_runtime.channels.credentials import Credentials
from coachops_runtime.channels.email import message, unsubscribe
from coachops_runtime.channels.email.adapter import EmailAdapter
from coachops_runtime.channels.email.form import fields
from coachops_runtime.channels.email.quoting import strip_quoted

KEY = SecretStr("a-channel-key")
CREDS = Credentials({"from-address": "coach@coach.example.com", "webhook-secret": "key-1"})


@pytest.mark.parametrize(
    "text",
    [
        "Sounds good.\n\nOn Tue, 2 Dec 2026 at 08:00, Coach <c@x.org> wrote:\n> earlier",
        "Sounds good.\nOn Tue, 2 Dec 2026 at 08:00, a coach with a long name <c@x.org>\nwrote:\n"
        "> earlier",
        "Sounds good.\n\nLe mar. 2 déc. 2026 à 08:00, Coach <c@x.org> a écrit :\n> avant",
        "Sounds good.\n\nAm 02.12.2026 um 08:00 schrieb Coach <c@x.org>:\n> vorher",
        "Sounds good.\n\nEl mar, 2 dic 2026 a las 8:00, Coach (<c@x.org>) escribió:\n> antes",
        "Sounds good.\n\n-----Original Message-----\nFrom: Coach\nSent: Tuesday\nearlier",
        "Sounds good.\n\nFrom: Coach <c@x.org>\nSent: Tuesday, December 2, 2026 8:00 AM\n"
        "To: Robin\nSubject: Sleep\n\nearlier",
        "Sounds good.\n-- \nRobin\nSent from my phone",
        "Sounds good.\r\n\r\n> earlier\r\n> more",
    ],
)
def test_quoted_text_and_signatures_are_cut_off(text: str) -> None:
    assert strip_quoted(text) == "Sounds good."


def test_text_that_only_looks_like_quoting_stays() -> None:
    text = "From: my notes, I slept 6 hours.\nOn Monday I wrote: nothing."
    assert strip_quoted(text) == text
    assert strip_quoted("> only a quote") == ""


def request(body: bytes, content_type: str) -> HookRequest:
    return HookRequest("POST", "http://runtime/v1/hooks/email/x", {"content-type": content_type},
                       {}, body)  # fmt: skip


def test_forms_urlencoded_and_multipart_give_the_same_fields() -> None:
    mail = signers.mailgun_mail("Robin <r@y.org>", "coach@coach.example.com", "Hi", "hello é")
    plain = signers.mailgun("key-1", mail, token="t" * 50, timestamp=1)
    multi = signers.mailgun("key-1", mail, token="t" * 50, timestamp=1, multipart=True)
    one = fields(request(plain[0], plain[1]["Content-Type"]))
    other = fields(request(multi[0], multi[1]["Content-Type"]))
    assert one == other
    assert one["body-plain"] == "hello é"
    assert "attachment-1" not in other


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{}", "application/json"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b"no parts here", "multipart/form-data; boundary=xyz"),
    ],
)
def test_bodies_that_are_no_form_are_malformed(body: bytes, content_type: str) -> None:
    with pytest.raises(MalformedHookError):
        fields(request(body, content_type))


def test_unsubscribe_tokens_name_one_program_and_end_user() -> None:
    program, other_program, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    token = unsubscribe.token(KEY, program, user)
    assert unsubscribe.end_user_of(KEY, program, token) == user
    assert unsubscribe.end_user_of(KEY, other_program, token) is None
    assert unsubscribe.end_user_of(SecretStr("another-key"), program, token) is None
    forged = f"{uuid.uuid4().hex}.{token.split('.')[1]}"
    assert unsubscribe.end_user_of(KEY, program, forged) is None
    for garbage in ("", "nothex.abc", f"{user.hex}.***", f"{user.hex}"):
        assert unsubscribe.end_user_of(KEY, program, garbage) is None
    link = unsubscribe.link("https://api.example/", program, token)
    assert link == f"https://api.example/v1/hooks/email/{program}/unsubscribe?token={token}"


def about(thread: Thread | None, title: str = "Sleep\nbetter") -> About:
    return About(7, uuid.uuid4(), uuid.uuid4(), title, thread)


def test_reply_headers_thread_and_stay_on_one_line() -> None:
    chain = tuple(f"<m{i}@x.org>" for i in range(30))
    thread = Thread("<last@x.org>", chain, "Re: RE: Fwd: Sleep\r\nInjected: yes")
    reply = about(thread)
    link = f"https://api.example/v1/hooks/email/{reply.program_id}/unsubscribe?token={'a' * 60}"
    built = message.build("coach@coach.example.com", "robin@y.org", "One\n\nTwo <b>", reply, link)
    assert built["Subject"] == "Re: Sleep Injected: yes"
    assert built["In-Reply-To"] == "<last@x.org>"
    references = str(built["References"]).split()
    assert len(references) == message.MAX_REFERENCES
    assert references[0] == "<m0@x.org>"
    assert references[-2:] == ["<m29@x.org>", "<last@x.org>"]
    assert built["Message-ID"] == f"<coachops.7.{reply.program_id.hex}@coach.example.com>"
    assert built["From"] == "Sleep better <coach@coach.example.com>"
    # Flattened as the SMTP client does, the link is one unencoded line.
    raw = flatten_message(built).decode()
    assert f"List-Unsubscribe: <{link}>\r\n" in raw
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    html_part = built.get_body(("html",))
    assert html_part is not None
    assert "<p>One</p><p>Two &lt;b&gt;</p>" in html_part.get_content()


def test_a_reply_without_thread_is_titled_after_the_program() -> None:
    built = message.build("c@x.org", "r@y.org", "hi", about(None, "Sleep"), "https://l")
    assert built["Subject"] == "Sleep"
    assert built["In-Reply-To"] is None
    with pytest.raises(DeliveryError) as refused:
        message.build("c@x.org", "not an address", "hi", about(None), "https://l")
    assert refused.value.final


def test_the_adapter_verifies_mailgun_signatures() -> None:
    adapter = EmailAdapter(None, "https://api.example", KEY)
    mail = signers.mailgun_mail("Robin <R@Y.org>", "coach@coach.example.com", "Hi", "hello")
    now = time.time()
    body, headers = signers.mailgun("key-1", mail, timestamp=int(now))
    adapter.verify(request(body, headers["Content-Type"]), CREDS, now)
    for signed in (
        signers.mailgun("other", mail, timestamp=int(now)),
        signers.mailgun("key-1", mail, timestamp=int(now) - 9 * 3600),
        signers.mailgun("key-1", mail, timestamp=int(now) + 600),
    ):
        with pytest.raises(HookRejectedError):
            adapter.verify(request(signed[0], signed[1]["Content-Type"]), CREDS, now)
    odd = signers.mailgun("key-1", {**mail, "x": "1"}, timestamp=int(now))
    forged = odd[0].replace(f"timestamp={int(now)}".encode(), b"timestamp=soon")
    with pytest.raises(HookRejectedError):
        adapter.verify(request(forged, odd[1]["Content-Type"]), CREDS, now)
    with pytest.raises(HookRejectedError):
        adapter.handshake(request(b"", ""), CREDS)


def test_the_adapter_parses_a_mail_without_message_id_and_refuses_one_without_sender() -> None:
    adapter = EmailAdapter(None, "https://api.example", KEY)
    mail = signers.mailgun_mail("Robin <R@Y.org>", "c@x.org", "Hi", "hello")
    mail.pop("Message-Id")
    mail["message-headers"] = "not json"
    body, headers = signers.mailgun("key-1", mail, token="k" * 50)
    (parsed,) = adapter.parse(request(body, headers["Content-Type"])).messages
    assert parsed.sender == "r@y.org"
    assert parsed.display_name == "Robin"
    assert parsed.provider_key == f"<mailgun.{'k' * 50}@coachops.invalid>"
    assert parsed.also_once == (f"mailgun-token:{'k' * 50}",)
    assert parsed.thread is not None
    assert parsed.thread.subject == "Hi"
    no_sender = signers.mailgun("key-1", {**mail, "from": "nobody"})
    with pytest.raises(MalformedHookError):
        adapter.parse(request(no_sender[0], no_sender[1]["Content-Type"]))
    assert adapter.acknowledgement() == (b"", "text/plain")


async def test_the_api_side_adapter_sends_nothing() -> None:
    adapter = EmailAdapter(None, "https://api.example", KEY)
    outgoing = Outgoing("r@y.org", "hi", None, about(None))
    with pytest.raises(DeliveryError):
        await adapter.send(None, CREDS, outgoing)  # type: ignore[arg-type]


def test_mailgun_events_as_the_adapter_parses_them() -> None:
    adapter = EmailAdapter(None, "https://api.example", KEY)
    now = time.time()

    def parsed(signed: tuple[bytes, dict[str, str]]) -> list[StatusUpdate]:
        req = request(signed[0], signed[1]["Content-Type"])
        adapter.verify(req, CREDS, now)
        return adapter.parse(req).statuses

    assert parsed(signers.mailgun_event("key-1", "delivered", "<a@x.org>")) == [
        StatusUpdate("<a@x.org>", "delivered")
    ]
    assert parsed(signers.mailgun_event("key-1", "clicked", "a@x.org")) == []
    assert parsed(signers.mailgun_event("key-1", "failed", "a@x.org", severity="temporary")) == []
    bounce = signers.mailgun_event("key-1", "failed", "a@x.org", severity="permanent")
    assert parsed(bounce) == [StatusUpdate("<a@x.org>", "failed", "bounce")]
    assert parsed(signers.mailgun_event("key-1", "opened", "<>")) == []
    for body in (b"[]", b"not json", b'{"signature": "x"}'):
        with pytest.raises(HookRejectedError):
            adapter.verify(request(body, "application/json"), CREDS, now)
    with pytest.raises(MalformedHookError):
        adapter.parse(request(b'{"signature": {}}', "application/json"))
    with pytest.raises(MalformedHookError):
        adapter.parse(request(b"[1]", "application/json"))
