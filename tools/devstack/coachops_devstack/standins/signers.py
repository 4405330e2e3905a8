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
- Mailgun (inbound routes): form fields ``timestamp``, ``token`` and ``signature`` = hex
  HMAC-SHA256 of timestamp followed by token with the webhook signing key; the parsed mail
  as ``application/x-www-form-urlencoded``, or ``multipart/form-data`` with attachments.

Status reports: Twilio's status callback (form ``MessageSid``, ``MessageStatus``, signed
like a message), WhatsApp's ``statuses`` notification (signed like a message) and
Mailgun's event webhook (JSON with a ``signature`` object signed like the inbound route).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
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


def twilio_status(sid: str, status: str, account: str, error_code: str = "") -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return params


def whatsapp_status(
    message_id: str, status: str, recipient: str, phone_number_id: str, error: int = 0
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if error:
        entry["errors"] = [{"code": error, "title": "Message undeliverable"}]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "statuses": [entry],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}],
    }


def mailgun_mail(
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    *,
    message_id: str | None = None,
    in_reply_to: str = "",
    references: str = "",
) -> dict[str, str]:
    """The fields of a mail as a Mailgun route's forward() posts it (parsed)."""
    message_id = message_id or f"<{uuid.uuid4().hex}@mail.example.org>"
    headers = [
        ["Received", "by mxa.mailgun.org with SMTP"],
        ["From", sender],
        ["To", recipient],
        ["Subject", subject],
        ["Message-Id", message_id],
        ["Mime-Version", "1.0"],
        ["Content-Type", 'text/plain; charset="utf-8"'],
    ]
    if in_reply_to:
        headers.append(["In-Reply-To", in_reply_to])
    if references:
        headers.append(["References", references])
    fields = {
        "recipient": recipient,
        "sender": sender.rpartition("<")[2].rstrip(">"),
        "from": sender,
        "subject": subject,
        "body-plain": text,
        "stripped-text": text,
        "message-headers": json.dumps(headers),
        "Message-Id": message_id,
    }
    if in_reply_to:
        fields["In-Reply-To"] = in_reply_to
    if references:
        fields["References"] = references
    return fields


def mailgun(
    signing_key: str,
    fields: dict[str, str],
    *,
    timestamp: int | None = None,
    token: str | None = None,
    multipart: bool = False,
) -> Signed:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)  # Mailgun's tokens are 50 characters
    digest = hmac.new(signing_key.encode(), f"{ts}{token}".encode(), hashlib.sha256).hexdigest()
    signed = {**fields, "timestamp": ts, "token": token, "signature": digest}
    if not multipart:
        return urlencode(signed).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    boundary = f"----mailgun{secrets.token_hex(8)}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{value}\r\n"
        for name, value in signed.items()
    ]
    attachment = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment-1"; '
        'filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\nnot read\r\n'
    )
    body = ("".join(parts) + attachment + f"--{boundary}--\r\n").encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def mailgun_event(
    signing_key: str,
    event: str,
    message_id: str,
    *,
    severity: str = "",
    code: int = 0,
    description: str = "",
    timestamp: int | None = None,
) -> Signed:
    """A Mailgun event webhook about the message ``message_id`` (angle brackets dropped, as
    Mailgun reports it)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    token = secrets.token_hex(25)
    digest = hmac.new(signing_key.encode(), f"{ts}{token}".encode(), hashlib.sha256).hexdigest()
    data: dict[str, Any] = {
        "event": event,
        "id": secrets.token_hex(11),
        "timestamp": float(ts),
        "recipient": "robin@reader.example.org",
        "message": {"headers": {"message-id": message_id.strip("<>")}},
    }
    if severity:
        data["severity"] = severity
        data["reason"] = "bounce"
        data["delivery-status"] = {"code": code, "message": "", "description": description}
    payload = {"signature": {"timestamp": ts, "token": token, "signature": digest},
               "event-data": data}  # fmt: skip
    return json.dumps(payload).encode(), {"Content-Type": "application/json"}
