"""STOP/START/HELP on SMS and WhatsApp, asserted on what the provider received; and
cross-tenant: one program's secret opens no other program's webhook, and the outbox sends
each program's messages with that program's credentials only."""

from __future__ import annotations

import pytest

from tests.channels.conftest import Channeling


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
async def test_stop_start_help_update_consent_and_are_answered(
    channeling: Channeling, channel: str
) -> None:
    wired = await channeling.setup(channel)
    robin = channeling.sender(wired)

    await channeling.say(robin, "  Stop ")
    await channeling.deliver()
    (answer,) = channeling.received(robin)
    assert "unsubscribed" in answer.text
    assert "START" in answer.text
    (consent,) = await channeling.rows(
        "SELECT k.granted, k.address FROM consents k JOIN channel_identities i"
        " ON i.end_user_id = k.end_user_id WHERE i.program_id = $1 AND k.channel = $2",
        wired.program,
        channel,
    )
    assert (consent["granted"], consent["address"]) == (False, robin.address)
    assert await channeling.count("reply_jobs", wired.program) == 0

    # Opted out: the creator's reply is not sent.
    await channeling.creator_reply(robin, "we miss you")
    await channeling.deliver()
    assert len(channeling.received(robin)) == 1
    (suppressed,) = await channeling.rows(
        "SELECT state FROM channel_outbox WHERE program_id = $1 AND purpose = 'message'",
        wired.program,
    )
    assert suppressed["state"] == "suppressed"

    await channeling.say(robin, "start")
    await channeling.creator_reply(robin, "welcome back")
    await channeling.say(robin, "Hilfe")
    await channeling.deliver()
    texts = [r.text for r in channeling.received(robin)]
    assert "subscribed to" in texts[1]
    assert "again" in texts[1]
    assert texts[2] == "welcome back"
    assert "STOPP" in texts[3]  # German, as asked
    (consent,) = await channeling.rows(
        "SELECT k.granted FROM consents k JOIN channel_identities i"
        " ON i.end_user_id = k.end_user_id WHERE i.program_id = $1",
        wired.program,
    )
    assert consent["granted"] is True
    # A sentence that merely contains a keyword is a message for the coach.
    await channeling.say(robin, "please stop reminding me at 6")
    assert await channeling.count("reply_jobs", wired.program) == 1


async def test_keywords_do_not_apply_to_telegram(channeling: Channeling) -> None:
    wired = await channeling.setup("telegram")
    robin = channeling.sender(wired)
    await channeling.say(robin, "STOP")
    assert await channeling.count("reply_jobs", wired.program) == 1
    assert await channeling.rows("SELECT * FROM consents") == []


@pytest.mark.parametrize("channel", ["telegram", "slack", "sms", "whatsapp"])
async def test_a_webhook_signed_for_program_a_cannot_post_into_program_b(
    channeling: Channeling, channel: str
) -> None:
    a = await channeling.setup(channel)
    b = await channeling.setup(channel)
    robin_b = channeling.sender(b)
    # Signed with A's credentials, sent to B's URL (and for Twilio, over B's URL).
    signed = robin_b.sign("hijack", values=a.values)
    response = await channeling.post(b, signed)
    assert response.status_code == 401
    for wired in (a, b):
        assert await channeling.count("messages", wired.program) == 0
        assert await channeling.count("channel_inbound", wired.program) == 0
    # B's own signature still works.
    assert (await channeling.post(b, robin_b.sign("mine"))).status_code == 200
    assert await channeling.count("messages", b.program) == 1


async def test_the_outbox_sends_each_programs_messages_with_its_own_credentials(
    channeling: Channeling,
) -> None:
    a = await channeling.setup("telegram")
    b = await channeling.setup("telegram")
    robin_a, robin_b = channeling.sender(a, 1), channeling.sender(b, 1)  # the same chat id
    await channeling.say(robin_a, "hi from a")
    await channeling.say(robin_b, "hi from b")
    for n in range(3):
        await channeling.creator_reply(robin_a, f"a{n}")
        await channeling.creator_reply(robin_b, f"b{n}")
    await channeling.deliver()
    sent = channeling.standins.sent("telegram")
    assert sorted(r.text for r in sent) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    for record in sent:
        owner = a if record.text.startswith("a") else b
        assert record.credential == owner.values["bot-token"], record

    # A's credentials gone (channel disabled): A's message is not sent with anything else.
    await channeling.coaching.tenants.owner(
        a.creator.creator_id, "DELETE FROM channel_credentials WHERE program_id = $1", a.program
    )
    await channeling.creator_reply(robin_a, "a-after")
    await channeling.deliver()
    assert [r.text for r in channeling.standins.sent("telegram")][6:] == []
    (row,) = await channeling.rows(
        "SELECT state, last_error FROM channel_outbox WHERE program_id = $1"
        " ORDER BY delivery_id DESC LIMIT 1",
        a.program,
    )
    assert row["state"] == "dead"
    assert "no credentials" in row["last_error"]
    # And its webhook is gone with them.
    assert (await channeling.post(a, robin_a.sign("anyone?"))).status_code == 404
