"""Inbound webhooks per channel: a signed message becomes one AI reply delivered to the
provider; forged, stale and replayed requests are refused and leave nothing behind; a
message delivered five times is processed once."""

from __future__ import annotations

import asyncio
import time

import pytest

from coachops_devstack.standins import signers
from coachops_runtime.ai.worker import ReplyPoller
from tests.channels.conftest import CHANNELS, Channeling


@pytest.mark.parametrize("channel", CHANNELS)
async def test_signed_message_gets_one_ai_reply_delivered(
    channeling: Channeling, replies: ReplyPoller, channel: str
) -> None:
    wired = await channeling.setup(channel)
    robin = channeling.sender(wired)
    await channeling.say(robin, "How do I fall asleep faster?")
    await channeling.coaching.drain(replies)
    await channeling.deliver()

    (row,) = await channeling.rows(
        "SELECT body FROM messages WHERE program_id = $1 AND author = 'ai'", wired.program
    )
    received = channeling.received(robin)
    assert len(received) >= 1
    assert " ".join(r.text for r in received).split() == row["body"].split()
    # The end user was enrolled through their channel identity.
    (user,) = await channeling.rows(
        "SELECT u.status, n.status AS enrolment FROM channel_identities i"
        " JOIN end_users u ON u.end_user_id = i.end_user_id"
        " JOIN enrolments n ON n.end_user_id = i.end_user_id AND n.program_id = i.program_id"
        " WHERE i.program_id = $1 AND i.external_id = $2",
        wired.program,
        robin.identity,
    )
    assert (user["status"], user["enrolment"]) == ("active", "active")
    (delivery,) = await channeling.rows(
        "SELECT state, attempts FROM channel_outbox WHERE program_id = $1", wired.program
    )
    assert (delivery["state"], delivery["attempts"]) == ("sent", 1)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_forged_requests_are_refused_and_not_stored(
    channeling: Channeling, channel: str
) -> None:
    wired = await channeling.setup(channel)
    robin = channeling.sender(wired)
    other = {key: f"{value}-forged" for key, value in wired.values.items()}
    # WhatsApp signs with app-secret, Telegram sends webhook-secret, and so on: every key
    # differs, so the signature is made with the wrong secret whatever the channel.
    forged = await channeling.post(wired, robin.sign("let me in", values=other))
    assert forged.status_code == 401, forged.text
    assert forged.headers["content-type"].startswith("application/problem+json")
    body, headers, _ = robin.sign("no signature")
    unsigned = {k: v for k, v in headers.items() if k.lower() == "content-type"}
    response = await channeling.client.post(wired.path, content=body, headers=unsigned)
    assert response.status_code == 401
    # A signed body changed in transit.
    body, headers, _ = robin.sign("original text")
    tampered = body.replace(b"original", b"tampered")
    if channel != "telegram":  # Telegram signs nothing but the shared secret
        response = await channeling.client.post(wired.path, content=tampered, headers=headers)
        assert response.status_code == 401
    for table in ("channel_inbound", "messages", "channel_identities"):
        assert await channeling.count(table, wired.program) == 0, table


async def test_slack_stale_timestamp_and_replayed_request_are_refused(
    channeling: Channeling,
) -> None:
    wired = await channeling.setup("slack")
    robin = channeling.sender(wired)
    stale = robin.sign("from the past", timestamp=int(time.time()) - 6 * 60)
    assert (await channeling.post(wired, stale)).status_code == 401
    future = robin.sign("from the future", timestamp=int(time.time()) + 6 * 60)
    assert (await channeling.post(wired, future)).status_code == 401
    assert await channeling.count("messages", wired.program) == 0
    # Inside the window a replay of a request that was accepted is a duplicate.
    fresh = robin.sign("hello")
    assert (await channeling.post(wired, fresh)).status_code == 200
    retry_headers = {**fresh[1], "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    replay = await channeling.client.post(wired.path, content=fresh[0], headers=retry_headers)
    assert replay.status_code == 200
    assert await channeling.count("messages", wired.program) == 1


async def test_slack_url_verification_answers_the_challenge_only_when_signed(
    channeling: Channeling,
) -> None:
    wired = await channeling.setup("slack")
    payload = {"type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595"}
    body, headers = signers.slack(wired.values["signing-secret"], payload)
    answer = await channeling.client.post(wired.path, content=body, headers=headers)
    assert (answer.status_code, answer.text) == (200, "3eZbrw1aBm2rZgRNFdxV2595")
    body, headers = signers.slack("not-the-secret", payload)
    forged = await channeling.client.post(wired.path, content=body, headers=headers)
    assert forged.status_code == 401


async def test_whatsapp_verify_token_handshake(channeling: Channeling) -> None:
    wired = await channeling.setup("whatsapp")
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    good = await channeling.client.get(
        wired.path, params={**query, "hub.verify_token": wired.values["verify-token"]}
    )
    assert (good.status_code, good.text) == (200, "1158201444")
    bad = await channeling.client.get(wired.path, params={**query, "hub.verify_token": "guess"})
    assert bad.status_code == 401
    assert "1158201444" not in bad.text


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_same_update_five_times_is_processed_once(
    channeling: Channeling, channel: str
) -> None:
    wired = await channeling.setup(channel)
    robin = channeling.sender(wired)
    signed = robin.sign("Is this thing on?")
    first = await channeling.post(wired, signed)
    assert first.status_code == 200, first.text
    # Four more: concurrently, as a provider's retries can overlap.
    answers = await asyncio.gather(*(channeling.post(wired, signed) for _ in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert await channeling.count("channel_inbound", wired.program) == 1
    assert await channeling.count("messages", wired.program) == 1
    assert await channeling.count("reply_jobs", wired.program) == 1
    assert await channeling.count("channel_identities", wired.program) == 1


async def test_unknown_senders_are_ignored_when_the_program_says_so(
    channeling: Channeling,
) -> None:
    wired = await channeling.setup("telegram", unknownSenders="ignore")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello?")
    assert await channeling.count("messages", wired.program) == 0
    assert await channeling.count("channel_identities", wired.program) == 0
    assert await channeling.count("channel_inbound", wired.program) == 1


async def test_unwired_channel_and_unknown_program_are_not_found(
    channeling: Channeling,
) -> None:
    wired = await channeling.setup("telegram")
    robin = channeling.sender(wired)
    body, headers, _ = robin.sign("hi")
    for path in (
        f"/v1/hooks/slack/{wired.program}",
        "/v1/hooks/telegram/00000000-0000-4000-8000-000000000000",
        f"/v1/hooks/email/{wired.program}",
        f"/v1/hooks/fax/{wired.program}",
    ):
        response = await channeling.client.post(path, content=body, headers=headers)
        assert response.status_code == 404, path
    response = await channeling.client.post(
        "/v1/hooks/telegram/not-a-uuid", content=body, headers=headers
    )
    assert response.status_code == 422
