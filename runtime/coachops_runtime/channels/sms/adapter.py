"""SMS through Twilio (https://www.twilio.com/docs/messaging).

Inbound: Twilio POSTs the message form-encoded and signs it in ``X-Twilio-Signature``
(HMAC-SHA1 with the auth token over the full URL and the sorted parameters); ``twilio``'s
``RequestValidator`` checks it. ``MessageSid`` makes a message processed once; the sender's
identity and reply address are its phone number (``From``). The answer is empty TwiML.
Outbound: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth
(account SID, auth token) and ``To``, ``From``, ``Body`` (at most 1,600 characters).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from twilio.request_validator import RequestValidator

from coachops_runtime.channels.adapter import (
    Capabilities,
    HookRejectedError,
    HookRequest,
    Inbound,
    MalformedHookError,
    Outgoing,
    Parsed,
    classify,
    read_json,
)
from coachops_runtime.channels.credentials import Credentials

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError as error:
        raise MalformedHookError("the form is not UTF-8") from error


class SmsAdapter:
    channel = "sms"
    capabilities = Capabilities(
        max_length=1600, splits=True, streaming=False, templates=False, keywords=True
    )
    credential_keys = ("account-sid", "auth-token", "from-number")

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base.rstrip("/")

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        signature = request.headers.get("x-twilio-signature", "")
        validator = RequestValidator(credentials["auth-token"])
        if not signature or not validator.validate(request.url, form(request.body), signature):
            raise HookRejectedError("the Twilio signature does not match this program's auth token")

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        raise HookRejectedError("Twilio webhooks have no subscription check")

    def parse(self, request: HookRequest) -> Parsed:
        params = form(request.body)
        sid, sender, text = params.get("MessageSid"), params.get("From"), params.get("Body")
        if not sid or not sender or text is None:
            raise MalformedHookError("a Twilio message needs MessageSid, From and Body")
        return Parsed([Inbound(sid, sender, sender, text)])

    def acknowledgement(self) -> tuple[bytes, str]:
        return EMPTY_TWIML, "text/xml"

    async def send(
        self, http: aiohttp.ClientSession, credentials: Credentials, outgoing: Outgoing
    ) -> str:
        sid = credentials["account-sid"]
        url = f"{self.api_base}/2010-04-01/Accounts/{sid}/Messages.json"
        data = {"To": outgoing.address, "From": credentials["from-number"], "Body": outgoing.text}
        headers = {"Authorization": aiohttp.encode_basic_auth(sid, credentials["auth-token"])}
        async with http.post(url, data=data, headers=headers) as response:
            answer: dict[str, Any] = await read_json(response)
            if response.status in (200, 201):
                return str(answer.get("sid", ""))
            reason = f"{answer.get('code', '')} {answer.get('message', response.reason)}".strip()
            raise classify(response.status, response.headers.get("Retry-After"), reason)
