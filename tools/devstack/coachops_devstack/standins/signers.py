"""Inbound webhooks signed as each provider documents, written from the providers' docs
(not with the SDKs the runtime verifies with, so the two can disagree).

- Telegram: the ``secret_token`` given to ``setWebhook``, sent as
  ``X-Telegram-Bot-Api-Secret-Token``.
- Slack: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret, in
  ``X-Slack-Signature``, the timestamp in ``X-Slack-Request-Timestamp``.
- Twilio: base64 HMAC-SHA1, keyed with the auth token, of the full URL followed by every
  POST parameter's name and value sorted by name, in ``X-Twilio-Signature``.
- WhatsApp (Meta): ``sha256=`` + hex HMAC-SHA256 of the raw body with the app secret, in
  ``X-Hub-Signature-256``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

Signed = tuple[bytes, dict[str, str]]


def telegram(secret: str, update: dict[str, Any]) -> Signed:
    body = json.dumps(update).encode()
    return body, {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}


def telegram_text(update_id: int, chat_id: int, text: str, name: str = "Robin") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "from": {"id": chat_id, "is_bot": False, "first_name": name, "language_code": "en"},
            "chat": {"id": chat_id, "type": "private", "first_name": name},
            "text": text,
        },
    }


def slack(secret: str, payload: dict[str, Any], timestamp: int | None = None) -> Signed:
    body = json.dumps(payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def slack_message(event_id: str, user: str, channel: str, text: str) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": user,
            "channel": channel,
            "text": text,
            "ts": f"{time.time():.6f}",
        },
    }


def twilio(auth_token: str, url: str, params: dict[str, str]) -> Signed:
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": base64.b64encode(digest).decode(),
    }


def twilio_sms(sid: str, sender: str, to: str, text: str, account: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account,
        "From": sender,
        "To": to,
        "Body": text,
        "NumMedia": "0",
    }


def whatsapp(app_secret: str, payload: dict[str, Any]) -> Signed:
    body = json.dumps(payload).encode()
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def whatsapp_text(
    message_id: str, sender: str, text: str, phone_number_id: str, name: str = "Robin"
) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA-1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000000",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
