"""Telegram (Bot API, https://core.telegram.org/bots/api).

Inbound: the webhook is set with a ``secret_token`` (the Secret's ``webhook-secret``), which
Telegram sends in ``X-Telegram-Bot-Api-Secret-Token`` on every update; the update's
``update_id`` makes it processed once. The sender's identity and reply address are the
chat id. Outbound: ``POST /bot<token>/sendMessage`` with ``chat_id`` and ``text`` (at most
4096 characters); a 429 carries ``parameters.retry_after``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import aiohttp

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

SECRET_HEADER = "x-telegram-bot-api-secret-token"


class TelegramAdapter:
    channel = "telegram"
    capabilities = Capabilities(max_length=4096, splits=True, streaming=True, templates=False)
    credential_keys = ("bot-token", "webhook-secret")

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base.rstrip("/")

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        given = request.headers.get(SECRET_HEADER, "")
        if not given or not hmac.compare_digest(
            given.encode(), credentials["webhook-secret"].encode()
        ):
            raise HookRejectedError("the secret token does not match this program's")

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        raise HookRejectedError("Telegram webhooks have no subscription check")

    def parse(self, request: HookRequest) -> Parsed:
        try:
            update = json.loads(request.body)
            update_id = int(update["update_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise MalformedHookError("not a Telegram update (JSON with update_id)") from error
        message: Any = update.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return Parsed()  # edits, joins, stickers, callbacks: nothing to answer
        try:
            chat = str(int(message["chat"]["id"]))
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedHookError("a Telegram message without chat.id") from error
        sender: Any = message.get("from") or {}
        name = " ".join(
            str(part) for part in (sender.get("first_name"), sender.get("last_name")) if part
        )
        locale = sender.get("language_code")
        return Parsed(
            [
                Inbound(
                    provider_key=str(update_id),
                    sender=chat,
                    address=chat,
                    text=message["text"],
                    display_name=name[:200],
                    locale=locale if isinstance(locale, str) else None,
                )
            ]
        )

    def acknowledgement(self) -> tuple[bytes, str]:
        return b"{}", "application/json"

    async def send(
        self, http: aiohttp.ClientSession, credentials: Credentials, outgoing: Outgoing
    ) -> str:
        url = f"{self.api_base}/bot{credentials['bot-token']}/sendMessage"
        payload = {"chat_id": outgoing.address, "text": outgoing.text}
        async with http.post(url, json=payload) as response:
            data = await read_json(response)
            if response.status == 200 and data.get("ok") is True:
                result: Any = data.get("result") or {}
                return str(result.get("message_id", ""))
            reason = str(data.get("description") or response.reason or "no description")
            parameters: Any = data.get("parameters") or {}
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            error = classify(
                response.status,
                None if retry_after is None else str(retry_after),
                reason,
            )
            if response.status == 200:  # ok: false without an error code
                raise DeliveryError(reason, final=True)
            raise error
