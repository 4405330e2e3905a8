"""Delivery statuses the providers report: Twilio status callbacks (the StatusCallback URL
each send names, X-Twilio-Signature verified) and WhatsApp ``statuses`` (X-Hub-Signature-256)
update the delivery as GET /v1/channel-deliveries shows it; they only move forward;
forged reports are refused; one program's reports never touch another's deliveries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coachops_devstack.standins import signers
from coachops_runtime.channels.settings import ChannelSettings
from tests.channels.conftest import Channeling, Sender, Wired

BASE = "http://runtime"


@pytest.fixture
def channel_settings(channel_settings: ChannelSettings) -> ChannelSettings:
    return channel_settings.model_copy(update={"webhook_base_url": BASE})


async def delivered_to(channeling: Channeling, robin: Sender, text: str) -> str:
    """The creator's reply, delivered; the provider's id of it."""
    await channeling.creator_reply(robin, text)
    await channeling.deliver()
    (row,) = await channeling.rows(
        "SELECT provider_ids FROM channel_outbox WHERE program_id = $1 AND body = $2",
        robin.wired.program,
        text,
    )
    (provider_id,) = row["provider_ids"]
    return str(provider_id)


async def twilio_report(
    channeling: Channeling,
    wired: Wired,
    sid: str,
    status: str,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
) -> httpx.Response:
    creds = values or wired.values
    params = signers.twilio_status(sid, status, creds["account-sid"], error)
    body, headers = signers.twilio(creds["auth-token"], f"{BASE}{wired.path}", params)
    return await channeling.client.post(wired.path, content=body, headers=headers)


async def whatsapp_report(
    channeling: Channeling,
    wired: Wired,
    message_id: str,
    status: str,
    *,
    error: int = 0,
    values: dict[str, str] | None = None,
) -> httpx.Response:
    creds = values or wired.values
    payload = signers.whatsapp_status(
        message_id, status, "4915100000001", wired.values["phone-number-id"], error
    )
    body, headers = signers.whatsapp(creds["app-secret"], payload)
    return await channeling.client.post(wired.path, content=body, headers=headers)


async def shown(channeling: Channeling, wired: Wired, state: str = "sent") -> dict[str, Any]:
    """The deliveries API's view of the program's deliveries, by provider status."""
    response = await channeling.client.get(
        "/v1/channel-deliveries",
        params={"state": state, "program_id": str(wired.program)},
        headers=wired.creator.headers,
    )
    assert response.status_code == 200, response.text
    return {item["delivery_id"]: item for item in response.json()["items"]}


async def status_of(channeling: Channeling, wired: Wired) -> list[tuple[Any, Any]]:
    items = (await shown(channeling, wired)).values()
    return [(item["provider_status"], item["provider_error"]) for item in items]


async def test_twilio_status_callbacks_update_the_delivery(channeling: Channeling) -> None:
    wired = await channeling.setup("sms")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hi")
    sid = await delivered_to(channeling, robin, "hello from your coach")
    (sent,) = channeling.received(robin)
    assert sent.payload["StatusCallback"] == f"{BASE}{wired.path}"
    assert await status_of(channeling, wired) == [(None, None)]

    assert (await twilio_report(channeling, wired, sid, "queued")).status_code == 200
    assert await status_of(channeling, wired) == [(None, None)]
    assert (await twilio_report(channeling, wired, sid, "delivered")).status_code == 200
    (item,) = (await shown(channeling, wired)).values()
    assert item["provider_status"] == "delivered"
    assert item["provider_status_at"] is not None
    # A late "sent" does not undo "delivered"; a forged report changes nothing.
    assert (await twilio_report(channeling, wired, sid, "sent")).status_code == 200
    forged = {**wired.values, "auth-token": "forged"}
    refused = await twilio_report(channeling, wired, sid, "failed", values=forged)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert await status_of(channeling, wired) == [("delivered", None)]

    second = await delivered_to(channeling, robin, "did you get this?")
    report = await twilio_report(channeling, wired, second, "undelivered", error="30006")
    assert report.status_code == 200
    assert sorted(await status_of(channeling, wired), key=str) == sorted(
        [("delivered", None), ("failed", "Twilio error 30006")], key=str
    )
    # Status callbacks are neither messages nor identities.
    assert await channeling.count("messages", wired.program) == 3  # hi and the two replies
    assert await channeling.count("channel_identities", wired.program) == 1


async def test_whatsapp_statuses_update_the_delivery(channeling: Channeling) -> None:
    wired = await channeling.setup("whatsapp")
    robin = channeling.sender(wired)
    await channeling.say(robin, "hi")
    first = await delivered_to(channeling, robin, "hello from your coach")
    for status in ("sent", "delivered", "read", "delivered"):
        assert (await whatsapp_report(channeling, wired, first, status)).status_code == 200
    assert await status_of(channeling, wired) == [("read", None)]
    forged = {**wired.values, "app-secret": "forged"}
    refused = await whatsapp_report(channeling, wired, first, "failed", values=forged)
    assert refused.status_code == 401
    assert await status_of(channeling, wired) == [("read", None)]

    second = await delivered_to(channeling, robin, "still there?")
    report = await whatsapp_report(channeling, wired, second, "failed", error=131026)
    assert report.status_code == 200
    statuses = dict(
        (item["provider_status"], item["provider_error"])
        for item in (await shown(channeling, wired)).values()
    )
    assert statuses == {"read": None, "failed": "131026 Message undeliverable"}


async def test_reports_of_one_program_never_touch_another(channeling: Channeling) -> None:
    a = await channeling.setup("sms")
    b = await channeling.setup("sms")
    robin = channeling.sender(a)
    await channeling.say(robin, "hi")
    sid = await delivered_to(channeling, robin, "for A only")
    # B's own signature, on B's URL, naming A's message: recorded for B, not for A.
    response = await twilio_report(channeling, b, sid, "failed", error="30003")
    assert response.status_code == 200
    assert await status_of(channeling, a) == [(None, None)]
    # A's message id under B's secret on A's URL: refused.
    refused = await twilio_report(channeling, a, sid, "delivered", values=b.values)
    assert refused.status_code == 401
    assert await status_of(channeling, a) == [(None, None)]
    # B's creator does not see A's deliveries, with or without the program filter.
    response = await channeling.client.get(
        "/v1/channel-deliveries",
        params={"state": "sent", "program_id": str(a.program)},
        headers=b.creator.headers,
    )
    assert response.status_code == 200
    assert response.json()["items"] == []
    response = await channeling.client.get(
        "/v1/channel-deliveries", params={"state": "sent"}, headers=b.creator.headers
    )
    assert response.json()["items"] == []
