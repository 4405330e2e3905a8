"""Slack (Events API, https://api.slack.com/apis/events-api).

Inbound: every request is signed with the app's signing secret (``v0`` scheme:
HMAC-SHA256 over ``v0:{X-Slack-Request-Timestamp}:{body}``); ``slack_sdk``'s
``SignatureVerifier`` checks it and refuses timestamps more than five minutes away.
``url_verification`` is answered with its challenge. A retry (``X-Slack-Retry-Num``)
carries the same ``event_id``, which makes it processed once. Direct messages and
mentions are answered; messages from bots (the app's own replies among them) and edits
are not. The sender's identity is the Slack user, the reply address the conversation.
Outbound: ``chat.postMessage`` with the bot token; Slack asks for at most 4,000
characters per message, and answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
from slack_sdk.signature import Clock, SignatureVerifier

from coachops_runtime.channels.adapter import (
    Capabilities,
    DeliveryError,
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

_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
# Slack's errors that say "try again" rather than "this cannot work".
_TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
              "request_timeout"}  # fmt: skip


class _Clock(Clock):
    """The request's arrival time, so the replay window is measured against it."""

    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


class SlackAdapter:
    channel = "slack"
    capabilities = Capabilities(max_length=4000, splits=True, streaming=True, templates=False)
    credential_keys = ("bot-token", "signing-secret")

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base.rstrip("/")

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        verifier = SignatureVerifier(credentials["signing-secret"], clock=_Clock(now))
        try:
            valid = verifier.is_valid(
                request.body,
                request.headers.get("x-slack-request-timestamp"),
                request.headers.get("x-slack-signature"),
            )
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            raise HookRejectedError("the v0 signature does not match, or the timestamp is stale")

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        raise HookRejectedError("Slack verifies URLs with a signed POST (url_verification)")

    def parse(self, request: HookRequest) -> Parsed:
        try:
            payload = json.loads(request.body)
            kind = payload["type"]
        except (ValueError, KeyError, TypeError) as error:
            raise MalformedHookError("not a Slack event (JSON with type)") from error
        if kind == "url_verification":
            return Parsed(reply={"challenge": str(payload.get("challenge", ""))})
        if kind != "event_callback":
            return Parsed()
        event: Any = payload.get("event")
        event_id = payload.get("event_id")
        if not isinstance(event, dict) or not isinstance(event_id, str):
            raise MalformedHookError("an event_callback without event or event_id")
        if event.get("bot_id") or event.get("subtype"):
            return Parsed()  # bots (this app's own replies among them), edits, joins
        direct = event.get("type") == "message" and event.get("channel_type") == "im"
        if not (direct or event.get("type") == "app_mention"):
            return Parsed()
        user, channel, text = event.get("user"), event.get("channel"), event.get("text")
        if not (isinstance(user, str) and isinstance(channel, str) and isinstance(text, str)):
            raise MalformedHookError("a message event without user, channel or text")
        return Parsed([Inbound(event_id, user, channel, _MENTION.sub("", text).strip())])

    def acknowledgement(self) -> tuple[bytes, str]:
        return b"", "text/plain"

    async def send(
        self, http: aiohttp.ClientSession, credentials: Credentials, outgoing: Outgoing
    ) -> str:
        headers = {"Authorization": f"Bearer {credentials['bot-token']}"}
        payload = {"channel": outgoing.address, "text": outgoing.text}
        url = f"{self.api_base}/api/chat.postMessage"
        async with http.post(url, json=payload, headers=headers) as response:
            data = await read_json(response)
            if response.status == 200 and data.get("ok") is True:
                return str(data.get("ts", ""))
            reason = str(data.get("error") or response.reason or "no error given")
            if response.status == 200:
                raise DeliveryError(reason, final=reason not in _TRANSIENT)
            raise classify(response.status, response.headers.get("Retry-After"), reason)
