"""E-mail as a conversation channel: mails in through a Mailgun inbound route (signature
verified), replies out over SMTP to Mailpit, threaded (Message-ID, In-Reply-To,
References) across three mails, with quoted text stripped, text and HTML parts and a
one-click unsubscribe (RFC 8058) that stops further mail. Asserted on what Mailpit holds."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from coachops_devstack.mailpit import Mailpit
from coachops_devstack.standins import signers
from coachops_runtime.ai.worker import ReplyPoller
from coachops_runtime.channels.email import unsubscribe
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit.settings import Settings
from tests.channels.conftest import Channeling
from tests.channels.mail_helpers import creator_reply, post, received, wire_email, writer


@pytest.fixture
def runtime_settings(runtime_settings: Settings, mailpit: Mailpit) -> Settings:
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": mailpit.smtp_port, "smtp_tls": "none"}
    return runtime_settings.model_copy(update=smtp)


@pytest.fixture
def channel_settings(channel_settings: ChannelSettings) -> ChannelSettings:
    return channel_settings.model_copy(update={"webhook_base_url": "http://runtime"})


def header(message: dict[str, Any], name: str) -> str:
    (value,) = message["headers"][name]
    return str(value)


async def test_three_mails_thread_into_one_conversation_and_the_client_threads_replies(
    channeling: Channeling, replies: ReplyPoller, mailpit: Mailpit
) -> None:
    wired = await wire_email(channeling)
    robin = writer(wired)
    client = channeling.client

    first = robin.mail("Sleep questions", "How do I fall asleep faster?")
    assert (await post(client, wired, robin.sign(first))).status_code == 200
    await channeling.coaching.drain(replies)
    await channeling.deliver()
    (reply1,) = await received(mailpit, robin.address)
    assert header(reply1, "In-Reply-To") == first["Message-Id"]
    assert header(reply1, "References") == first["Message-Id"]
    assert header(reply1, "Subject") == "Re: Sleep questions"
    # From: the program's title and the address the inbound route forwards.
    assert header(reply1, "From") == f"Sleep <{wired.values['from-address']}>"
    assert reply1["Text"].strip()
    assert reply1["HTML"].startswith("<!DOCTYPE html>")

    # The end user's client answers the reply, quoting it below an attribution line.
    quoted = "\n".join(f"> {line}" for line in reply1["Text"].splitlines())
    second = robin.mail(
        "Re: Sleep questions",
        f"Thanks! And what about naps?\n\nOn Mon, 1 Dec 2026 at 09:00, Sleep\n"
        f"<{wired.values['from-address']}> wrote:\n{quoted}\n",
        in_reply_to=f"<{reply1['MessageID']}>",
        references=f"{first['Message-Id']} <{reply1['MessageID']}>",
    )
    assert (await post(client, wired, robin.sign(second, multipart=True))).status_code == 200
    await channeling.coaching.drain(replies)
    await channeling.deliver()
    reply2 = (await received(mailpit, robin.address))[1]
    assert header(reply2, "In-Reply-To") == second["Message-Id"]
    assert header(reply2, "References").split() == [
        first["Message-Id"],
        f"<{reply1['MessageID']}>",
        second["Message-Id"],
    ]

    third = robin.mail(
        "Re: Sleep questions",
        "Last one: is coffee at 4 pm too late?\n-- \nRobin\nSent from my phone",
        in_reply_to=f"<{reply2['MessageID']}>",
        references=f"{header(reply2, 'References')} <{reply2['MessageID']}>",
    )
    assert (await post(client, wired, robin.sign(third))).status_code == 200
    await channeling.coaching.drain(replies)
    await channeling.deliver()
    mails = await received(mailpit, robin.address)
    assert len(mails) == 3
    reply3 = mails[2]
    assert header(reply3, "In-Reply-To") == third["Message-Id"]
    assert header(reply3, "References").split() == [
        first["Message-Id"],
        f"<{reply1['MessageID']}>",
        second["Message-Id"],
        f"<{reply2['MessageID']}>",
        third["Message-Id"],
    ]
    assert {header(m, "Subject") for m in mails} == {"Re: Sleep questions"}
    assert len({m["MessageID"] for m in mails}) == 3

    # One conversation holds the three mails, quoted text and signature cut off.
    stored = await channeling.rows(
        "SELECT m.conversation_id, m.body FROM messages m WHERE m.program_id = $1"
        " AND m.direction = 'in' ORDER BY m.message_id",
        wired.program,
    )
    assert [row["body"] for row in stored] == [
        "How do I fall asleep faster?",
        "Thanks! And what about naps?",
        "Last one: is coffee at 4 pm too late?",
    ]
    assert len({row["conversation_id"] for row in stored}) == 1
    sent = await channeling.rows(
        "SELECT provider_ids FROM channel_outbox WHERE program_id = $1 AND state = 'sent'"
        " ORDER BY delivery_id",
        wired.program,
    )
    assert [row["provider_ids"] for row in sent] == [[f"<{m['MessageID']}>"] for m in mails]


async def test_one_click_unsubscribe_stops_further_mail(
    channeling: Channeling, mailpit: Mailpit
) -> None:
    wired = await wire_email(channeling)
    robin = writer(wired)
    mail = robin.mail("Hello", "Hi coach")
    assert (await post(channeling.client, wired, robin.sign(mail))).status_code == 200
    await creator_reply(channeling, wired, robin.address, "Welcome aboard")
    await channeling.deliver()
    (welcome,) = await received(mailpit, robin.address)
    assert header(welcome, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    link = header(welcome, "List-Unsubscribe").strip("<>")
    assert link.startswith(f"http://runtime/v1/hooks/email/{wired.program}/unsubscribe?token=")
    assert link in welcome["Text"]
    assert "unsubscribe</a>" in welcome["HTML"]
    target = urlsplit(link)
    path = f"{target.path}?{target.query}"

    # Following the link (or a scanner fetching it) changes nothing.
    page = await channeling.client.get(path)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert await consent_of(channeling, wired.program) is None

    # A forged or another end user's token is refused.
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    refused = await channeling.client.post(forged, content=b"List-Unsubscribe=One-Click")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")

    done = await channeling.client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    assert await consent_of(channeling, wired.program) == (False, robin.address)

    await creator_reply(channeling, wired, robin.address, "Still there?")
    await channeling.deliver()
    assert len(await received(mailpit, robin.address)) == 1
    (suppressed,) = await channeling.rows(
        "SELECT state, last_error FROM channel_outbox WHERE program_id = $1"
        " ORDER BY delivery_id DESC LIMIT 1",
        wired.program,
    )
    assert suppressed["state"] == "suppressed"
    assert "opted out" in suppressed["last_error"]


async def consent_of(channeling: Channeling, program: Any) -> tuple[bool, str] | None:
    rows = await channeling.rows(
        "SELECT k.granted, k.address FROM consents k JOIN channel_identities i"
        " ON i.end_user_id = k.end_user_id AND k.channel = i.channel"
        " WHERE i.program_id = $1 AND i.channel = 'email'",
        program,
    )
    return (rows[0]["granted"], rows[0]["address"]) if rows else None


async def test_unsubscribe_links_open_only_their_own_program(channeling: Channeling) -> None:
    a = await wire_email(channeling)
    b = await wire_email(channeling)
    robin = writer(a)
    assert (await post(channeling.client, a, robin.sign(robin.mail("Hi", "hello")))).status_code
    (identity,) = await channeling.rows(
        "SELECT end_user_id FROM channel_identities WHERE program_id = $1", a.program
    )
    key = channeling.settings.key
    assert key is not None
    token = unsubscribe.token(key, a.program, identity["end_user_id"])
    # A's valid token on B's unsubscribe URL: the signature names A's program.
    for method in ("GET", "POST"):
        response = await channeling.client.request(
            method, f"/v1/hooks/email/{b.program}/unsubscribe", params={"token": token}
        )
        assert response.status_code == 403, response.text
    # A token signed for B but naming A's end user: B has no such subscriber.
    other = unsubscribe.token(key, b.program, identity["end_user_id"])
    response = await channeling.client.post(
        f"/v1/hooks/email/{b.program}/unsubscribe", params={"token": other}
    )
    assert response.status_code == 404
    assert await consent_of(channeling, a.program) is None
    # A program without an e-mail channel has no unsubscribe URL, whatever the token.
    response = await channeling.client.post(
        f"/v1/hooks/email/{uuid.uuid4()}/unsubscribe", params={"token": token}
    )
    assert response.status_code == 404
    malformed = await channeling.client.post(
        f"/v1/hooks/email/{a.program}/unsubscribe", params={"token": "x"}
    )
    assert malformed.status_code == 422


async def test_forged_stale_and_replayed_mails_are_refused_and_duplicates_processed_once(
    channeling: Channeling,
) -> None:
    a = await wire_email(channeling)
    b = await wire_email(channeling)
    robin = writer(a)
    client = channeling.client
    mail = robin.mail("Hi", "a forged hello")
    for signed in (
        robin.sign(mail, key="not-the-key"),
        robin.sign(mail, key=b.values["webhook-secret"]),  # B's key on A's URL
        robin.sign(mail, timestamp=int(time.time()) - 9 * 3600),  # stale
        robin.sign(mail, timestamp=int(time.time()) + 3600),  # from the future
    ):
        response = await post(client, a, signed)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    # A's correctly signed mail on B's URL.
    assert (await post(client, b, robin.sign(mail))).status_code == 401
    body, headers = robin.sign(mail)
    unsigned = body.replace(b"signature=", b"ignored=")
    assert (await client.post(a.path, content=unsigned, headers=headers)).status_code == 401
    for program in (a.program, b.program):
        for table in ("channel_inbound", "messages", "channel_identities"):
            assert await channeling.count(table, program) == 0, table

    # The same mail five times (retries), and a captured signature reused for another.
    real = robin.mail("Hi", "the real hello")
    signed = robin.sign(real, token="t" * 50)
    for _ in range(5):
        assert (await post(client, a, signed)).status_code == 200
    replayed = robin.sign(robin.mail("Hi", "smuggled"), token="t" * 50)
    assert (await post(client, a, replayed)).status_code == 200
    bodies = await channeling.rows("SELECT body FROM messages WHERE program_id = $1", a.program)
    assert [row["body"] for row in bodies] == ["the real hello"]
    assert await channeling.count("reply_jobs", a.program) == 1


async def test_unknown_senders_ignored_when_the_channel_says_so(channeling: Channeling) -> None:
    wired = await wire_email(channeling, unknownSenders="ignore")
    robin = writer(wired)
    response = await post(channeling.client, wired, robin.sign(robin.mail("Hi", "hello?")))
    assert response.status_code == 200
    assert await channeling.count("messages", wired.program) == 0
    assert await channeling.count("channel_identities", wired.program) == 0


async def test_mailgun_events_report_what_became_of_a_reply(
    channeling: Channeling, mailpit: Mailpit
) -> None:
    wired = await wire_email(channeling)
    robin = writer(wired)
    client = channeling.client
    assert (await post(client, wired, robin.sign(robin.mail("Hi", "hello")))).status_code == 200
    await creator_reply(channeling, wired, robin.address, "first")
    await creator_reply(channeling, wired, robin.address, "second")
    await channeling.deliver()
    first, second = await received(mailpit, robin.address)
    key = wired.values["webhook-secret"]

    async def report(signed: Any) -> int:
        return (await client.post(wired.path, content=signed[0], headers=signed[1])).status_code

    assert await report(signers.mailgun_event(key, "delivered", first["MessageID"])) == 200
    assert await report(signers.mailgun_event(key, "opened", first["MessageID"])) == 200
    temporary = signers.mailgun_event(key, "failed", second["MessageID"], severity="temporary")
    assert await report(temporary) == 200
    assert await report(signers.mailgun_event("forged", "opened", second["MessageID"])) == 401
    permanent = signers.mailgun_event(
        key, "failed", second["MessageID"], severity="permanent", code=550,
        description="mailbox does not exist",
    )  # fmt: skip
    assert await report(permanent) == 200
    response = await client.get(
        "/v1/channel-deliveries",
        params={"state": "sent", "program_id": str(wired.program)},
        headers=wired.creator.headers,
    )
    shown = [(i["provider_status"], i["provider_error"]) for i in response.json()["items"]]
    assert shown == [("read", None), ("failed", "550 mailbox does not exist")]
    # Events are neither messages nor senders.
    assert await channeling.count("messages", wired.program) == 3
