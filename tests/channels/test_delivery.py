"""The channel outbox: creator and AI replies reach the provider exactly once and in order
through 429s, 5xx and hangs; permanent failures end dead-lettered, listed and retryable;
long texts are split at the channel's limit; WhatsApp's 24-hour window."""

from __future__ import annotations

import json

import pytest

from tests.channels.conftest import CHANNELS, Channeling

WORDS = " ".join(f"word{n}" for n in range(1100))  # 8,789 characters


@pytest.mark.parametrize("channel", CHANNELS)
async def test_provider_errors_for_a_while_then_each_message_once_in_order(
    channeling: Channeling, channel: str
) -> None:
    wired = await channeling.setup(channel)
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    channeling.standins.fail(channel, "429", "500", "hang")
    for text in ("first", "second", "third"):
        await channeling.creator_reply(robin, text)
    await channeling.deliver()

    assert [r.text for r in channeling.received(robin)] == ["first", "second", "third"]
    refused = [status for provider, status, _ in channeling.standins.refused if provider == channel]
    assert refused[:2] == [429, 500]
    rows = await channeling.rows(
        "SELECT state, attempts FROM channel_outbox WHERE program_id = $1 ORDER BY delivery_id",
        wired.program,
    )
    assert [r["state"] for r in rows] == ["sent"] * 3
    assert [r["attempts"] for r in rows] == [4, 1, 1]


async def test_a_429_is_not_retried_before_its_retry_after(channeling: Channeling) -> None:
    wired = await channeling.setup("telegram")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    channeling.standins.fail("telegram", "429")  # retry_after: 1 s; our backoff: <= 0.4 s
    await channeling.creator_reply(robin, "patience")
    await channeling.deliver()
    (refused_at,) = [r for r in channeling.standins.refused if r[1] == 429]
    (sent,) = channeling.received(robin)
    (row,) = await channeling.rows(
        "SELECT finished_at - created_at AS took FROM channel_outbox WHERE program_id = $1",
        wired.program,
    )
    assert refused_at
    assert row["took"].total_seconds() >= 1.0
    assert sent.text == "patience"


async def test_permanent_failure_is_dead_lettered_listed_and_retried(
    channeling: Channeling,
) -> None:
    wired = await channeling.setup("telegram")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    channeling.standins.refuse_recipient("telegram", robin.address)
    await channeling.creator_reply(robin, "are you there?")
    await channeling.creator_reply(robin, "still there?")
    await channeling.deliver()
    assert channeling.received(robin) == []

    client, headers = channeling.client, wired.creator.headers
    listed = await client.get("/v1/channel-deliveries", headers=headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["state"] for i in items] == ["dead", "dead"]
    assert items[0]["attempts"] == 1  # a final error: no retries
    assert "chat not found" in items[0]["last_error"]
    assert items[0]["program_id"] == str(wired.program)

    # Another creator neither sees nor retries them.
    other = await channeling.setup("telegram")
    theirs = await client.get("/v1/channel-deliveries", headers=other.creator.headers)
    assert theirs.json()["items"] == []
    stolen = await client.post(
        f"/v1/channel-deliveries/{items[0]['delivery_id']}/retry", headers=other.creator.headers
    )
    assert stolen.status_code == 404

    channeling.standins._unreachable.clear()
    for item in items:
        retried = await client.post(
            f"/v1/channel-deliveries/{item['delivery_id']}/retry", headers=headers
        )
        assert retried.status_code == 200, retried.text
        assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    await channeling.deliver()
    assert [r.text for r in channeling.received(robin)] == ["are you there?", "still there?"]
    again = await client.post(
        f"/v1/channel-deliveries/{items[0]['delivery_id']}/retry", headers=headers
    )
    assert again.status_code == 409
    sent = await client.get("/v1/channel-deliveries?state=sent", headers=headers)
    assert len(sent.json()["items"]) == 2


async def test_transient_failures_end_dead_after_max_attempts(channeling: Channeling) -> None:
    wired = await channeling.setup("sms")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    channeling.standins.fail("sms", *["500"] * channeling.settings.max_attempts)
    await channeling.creator_reply(robin, "this will not arrive")
    await channeling.creator_reply(robin, "but this will")
    await channeling.deliver()
    rows = await channeling.rows(
        "SELECT state, attempts, last_error FROM channel_outbox WHERE program_id = $1"
        " ORDER BY delivery_id",
        wired.program,
    )
    assert (rows[0]["state"], rows[0]["attempts"]) == ("dead", channeling.settings.max_attempts)
    assert "500" in rows[0]["last_error"]
    assert rows[1]["state"] == "sent"
    assert [r.text for r in channeling.received(robin)] == ["but this will"]


@pytest.mark.parametrize(("channel", "limit"), [("telegram", 4096), ("slack", 4000), ("sms", 1600)])
async def test_long_text_is_split_at_the_channel_limit(
    channeling: Channeling, channel: str, limit: int
) -> None:
    wired = await channeling.setup(channel)
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    await channeling.creator_reply(robin, WORDS)
    await channeling.deliver()
    parts = [r.text for r in channeling.received(robin)]
    assert len(parts) == -(-len(WORDS) // limit) or len(parts) == -(-len(WORDS) // limit) + 1
    assert all(len(part) <= limit for part in parts)
    assert " ".join(parts).split() == WORDS.split()


async def test_a_retry_resumes_after_the_parts_already_sent(channeling: Channeling) -> None:
    wired = await channeling.setup("telegram")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    channeling.standins.fail("telegram", "ok", "503")  # part 1 goes, part 2 fails once
    await channeling.creator_reply(robin, WORDS)
    await channeling.deliver()
    parts = [r.text for r in channeling.received(robin)]
    assert len(parts) == 3
    assert " ".join(parts).split() == WORDS.split()
    (row,) = await channeling.rows(
        "SELECT attempts, parts_sent, cardinality(provider_ids) AS ids FROM channel_outbox"
        " WHERE program_id = $1",
        wired.program,
    )
    assert (row["attempts"], row["parts_sent"], row["ids"]) == (2, 3, 3)


async def test_whatsapp_outside_24_hours_sends_only_the_template(channeling: Channeling) -> None:
    wired = await channeling.setup("whatsapp")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hello")
    await channeling.rows(
        "UPDATE channel_identities SET last_inbound_at = now() - interval '25 hours'"
        " WHERE program_id = $1",
        wired.program,
    )
    await channeling.creator_reply(robin, "checking in after a while")
    await channeling.deliver()
    assert channeling.received(robin) == []
    (dead,) = await channeling.rows(
        "SELECT delivery_id, state, last_error FROM channel_outbox WHERE program_id = $1",
        wired.program,
    )
    assert dead["state"] == "dead"
    assert "24 h" in dead["last_error"]

    spec = channeling.coaching.spec()
    spec["channels"] = [
        {
            "type": "whatsapp",
            "secretRef": "whatsapp-secret",
            "template": {"name": "coach_checkin", "language": "en_US"},
        }
    ]
    await channeling.rows(
        "UPDATE programs SET spec = $2::jsonb WHERE program_id = $1",
        wired.program,
        json.dumps(spec),
    )
    retried = await channeling.client.post(
        f"/v1/channel-deliveries/{dead['delivery_id']}/retry", headers=wired.creator.headers
    )
    assert retried.status_code == 200
    await channeling.deliver()
    (sent,) = channeling.received(robin)
    assert sent.payload["type"] == "template"
    assert sent.payload["template"]["name"] == "coach_checkin"
    assert sent.payload["template"]["language"] == {"code": "en_US"}
    (parameter,) = sent.payload["template"]["components"][0]["parameters"]
    assert parameter["text"] == "checking in after a while"

    # Within the window again (the end user wrote): free-form text.
    await channeling.say(robin, "thanks!")
    await channeling.creator_reply(robin, "you are welcome")
    await channeling.deliver()
    assert channeling.received(robin)[-1].payload["type"] == "text"
    assert channeling.received(robin)[-1].text == "you are welcome"
