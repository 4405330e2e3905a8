"""SMS through Twilio (https://www.twilio.com/docs/messaging).

Inbound: Twilio POSTs the message form-encoded and signs it in ``X-Twilio-Signature``
(HMAC-SHA1 with the auth token over the full URL and the sorted parameters); ``twilio``'s
``RequestValidator`` checks it. ``MessageSid`` makes a message processed once; the sender's
identity and reply address are its phone number (``From``). The answer is empty TwiML.
Outbound: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic auth
(account SID, auth token) and ``To``, ``From``, ``Body`` (at most 1,600 characters), and,
when the public base URL is set, ``StatusCallback`` = the program's webhook URL: Twilio's
status callbacks come to the same URL, signed the same way, and are told apart by
``MessageStatus`` without a ``Body``.
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
    StatusName,
    StatusUpdate,
    classify,
    read_json,
)
from coachops_runtime.channels.credentials import Credentials

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Twilio's MessageStatus values worth recording; queued, accepted, sending and the like
# are not news.
_STATUSES: dict[str, StatusName] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
}


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

    def __init__(self, api_base: str, status_base: str = "") -> None:
        self.api_base = api_base.rstrip("/")
        self.status_base = status_base.rstrip("/")

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        signature = request.headers.get("x-twilio-signature", "")
        validator = RequestValidator(credentials["auth-token"])
        if not signature or not validator.validate(request.url, form(request.body), signature):
            raise HookRejectedError("the Twilio signature does not match this program's auth token")

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        raise HookRejectedError("Twilio webhooks have no subscription check")

    def parse(self, request: HookRequest) -> Parsed:
        params = form(request.body)
        if "MessageStatus" in params and "Body" not in params:
            return _status(params)
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
        if self.status_base and outgoing.about is not None:
            data["StatusCallback"] = f"{self.status_base}/v1/hooks/sms/{outgoing.about.program_id}"
        headers = {"Authorization": aiohttp.encode_basic_auth(sid, credentials["auth-token"])}
        async with http.post(url, data=data, headers=headers) as response:
            answer: dict[str, Any] = await read_json(response)
            if response.status in (200, 201):
                return str(answer.get("sid", ""))
            reason = f"{answer.get('code', '')} {answer.get('message', response.reason)}".strip()
            raise classify(response.status, response.headers.get("Retry-After"), reason)


def _status(params: dict[str, str]) -> Parsed:
    sid = params.get("MessageSid")
    if not sid:
        raise MalformedHookError("a Twilio status callback needs MessageSid")
    status = _STATUSES.get(params["MessageStatus"].lower())
    if status is None:
        return Parsed()
    code = params.get("ErrorCode")
    return Parsed(statuses=[StatusUpdate(sid, status, f"Twilio error {code}" if code else None)])
