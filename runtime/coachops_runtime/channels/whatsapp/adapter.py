"""WhatsApp Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api).

Inbound: Meta signs each POST in ``X-Hub-Signature-256`` (``sha256=`` HMAC-SHA256 of the
raw body with the app secret); subscribing is a GET with ``hub.mode=subscribe``,
``hub.verify_token`` (the Secret's ``verify-token``) and ``hub.challenge``, answered with
the challenge. One POST may carry several messages; each message id is processed once.
Non-text messages are left out. ``statuses`` (sent, delivered, read, failed, by the id
``send`` returned) come to the same URL and are recorded for the delivery. The sender's
identity and reply address are its WhatsApp id (``from``). Outbound:
``POST /{phone-number-id}/messages`` with the access token as bearer; a free-form text (at
most 4,096 characters) only within 24 hours of the end user's last message, an approved
template otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp

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

# Cloud API error codes that mean "slow down" (sent with HTTP 400 or 429).
_THROTTLED = {4, 80007, 130429, 131048, 131056}
_STATUSES: dict[str, StatusName] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}


class WhatsAppAdapter:
    channel = "whatsapp"
    capabilities = Capabilities(
        max_length=4096,
        splits=True,
        streaming=False,
        templates=True,
        window_hours=24,
        keywords=True,
    )
    credential_keys = ("access-token", "app-secret", "verify-token", "phone-number-id")

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base.rstrip("/")

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        given = request.headers.get("x-hub-signature-256", "")
        expected = hmac.new(
            credentials["app-secret"].encode(), request.body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(given.encode(), f"sha256={expected}".encode()):
            raise HookRejectedError("X-Hub-Signature-256 does not match this program's app secret")

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        token = request.query.get("hub.verify_token", "")
        if request.query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            token.encode(), credentials["verify-token"].encode()
        ):
            raise HookRejectedError("hub.verify_token does not match this program's")
        return request.query.get("hub.challenge", "")

    def parse(self, request: HookRequest) -> Parsed:
        try:
            payload = json.loads(request.body)
            entries = payload["entry"]
            changes = [change for entry in entries for change in entry.get("changes", ())]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise MalformedHookError("not a WhatsApp notification (entry[].changes)") from error
        found: list[Inbound] = []
        statuses: list[StatusUpdate] = []
        for change in changes:
            value: Any = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            names = {
                c.get("wa_id"): (c.get("profile") or {}).get("name", "")
                for c in value.get("contacts") or ()
                if isinstance(c, dict)
            }
            for message in value.get("messages") or ():
                if not isinstance(message, dict) or message.get("type") != "text":
                    continue
                try:
                    key, sender = str(message["id"]), str(message["from"])
                    text = str(message["text"]["body"])
                except (KeyError, TypeError) as error:
                    raise MalformedHookError("a message without id, from or text.body") from error
                found.append(Inbound(key, sender, sender, text, str(names.get(sender) or "")))
            statuses.extend(_statuses(value))
        return Parsed(found, statuses=statuses)

    def acknowledgement(self) -> tuple[bytes, str]:
        return b"", "text/plain"

    async def send(
        self, http: aiohttp.ClientSession, credentials: Credentials, outgoing: Outgoing
    ) -> str:
        url = f"{self.api_base}/{credentials['phone-number-id']}/messages"
        headers = {"Authorization": f"Bearer {credentials['access-token']}"}
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": outgoing.address,
        }
        if outgoing.template is None:
            payload |= {"type": "text", "text": {"body": outgoing.text}}
        else:
            payload |= {
                "type": "template",
                "template": {
                    "name": outgoing.template.name,
                    "language": {"code": outgoing.template.language},
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": outgoing.text}]}
                    ],
                },
            }
        async with http.post(url, json=payload, headers=headers) as response:
            data: dict[str, Any] = await read_json(response)
            if response.status == 200:
                messages = data.get("messages") or [{}]
                return str(messages[0].get("id", ""))
            error: Any = data.get("error") or {}
            code = error.get("code") if isinstance(error, dict) else None
            reason = f"{code} {error.get('message', response.reason)}" if code else "no error"
            status = 429 if code in _THROTTLED else response.status
            raise classify(status, response.headers.get("Retry-After"), reason)


def _statuses(value: dict[str, Any]) -> list[StatusUpdate]:
    updates: list[StatusUpdate] = []
    for status in value.get("statuses") or ():
        if not isinstance(status, dict):
            continue
        name = _STATUSES.get(str(status.get("status")))
        if name is None or not isinstance(status.get("id"), str):
            continue
        errors = [e for e in status.get("errors") or () if isinstance(e, dict)]
        error = (
            f"{errors[0].get('code', '')} {errors[0].get('title', '')}".strip() if errors else None
        )
        updates.append(StatusUpdate(status["id"], name, error))
    return updates
