"""Mailgun's event webhooks (https://documentation.mailgun.com, "Webhooks"): what became of
a reply after the SMTP relay took it, when that relay is Mailgun's. They may be pointed at
the program's e-mail webhook URL: a JSON body ``{"signature": {timestamp, token,
signature}, "event-data": {...}}``, signed like the inbound route (HMAC-SHA256 of
timestamp and token), told apart from a forwarded mail by its JSON media type.

Recorded, by the reply's Message-ID: ``delivered``; ``failed`` with severity
``permanent`` (Mailgun gave up: bounce, rejected address) as failed with the SMTP code and
description; ``opened`` as read. Temporary failures (Mailgun retries them) and the other
events are acknowledged and left.
"""

from __future__ import annotations

import json
from typing import Any

from coachops_runtime.channels.adapter import HookRequest, MalformedHookError, Parsed, StatusUpdate


def is_event(request: HookRequest) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json"


def _payload(request: HookRequest) -> dict[str, Any]:
    try:
        payload = json.loads(request.body)
    except ValueError as error:
        raise MalformedHookError("a Mailgun event is a JSON object") from error
    if not isinstance(payload, dict):
        raise MalformedHookError("a Mailgun event is a JSON object")
    return payload


def signature(request: HookRequest) -> dict[str, str]:
    """The event's ``timestamp``, ``token`` and ``signature`` (empty when absent)."""
    try:
        signed = _payload(request).get("signature")
    except MalformedHookError:
        signed = None
    if not isinstance(signed, dict):
        return {}
    return {key: str(signed.get(key, "")) for key in ("timestamp", "token", "signature")}


def parse(request: HookRequest) -> Parsed:
    data = _payload(request).get("event-data")
    if not isinstance(data, dict):
        raise MalformedHookError("a Mailgun event needs event-data")
    headers = (data.get("message") or {}).get("headers") or {}
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    if not isinstance(message_id, str) or not message_id.strip("<> "):
        return Parsed()
    provider_id = f"<{message_id.strip('<> ')}>"
    event = data.get("event")
    if event == "delivered":
        return Parsed(statuses=[StatusUpdate(provider_id, "delivered")])
    if event == "opened":
        return Parsed(statuses=[StatusUpdate(provider_id, "read")])
    if event == "failed" and data.get("severity") == "permanent":
        status = data.get("delivery-status") or {}
        detail = status.get("description") or status.get("message") or data.get("reason") or ""
        error = " ".join(str(part) for part in (status.get("code"), detail) if part)
        return Parsed(statuses=[StatusUpdate(provider_id, "failed", error or None)])
    return Parsed()
