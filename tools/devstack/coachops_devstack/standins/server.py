"""One loopback HTTP server with the outbound APIs of Telegram, Slack, Twilio and WhatsApp
Cloud, as documented: each checks the credentials it was told to accept, the required
fields and the length limits, records what it accepted (and what it refused), and can be
told to answer 429, 5xx or hang for the next requests, or to refuse a recipient for good.

- Telegram ``POST /telegram/bot{token}/sendMessage`` (JSON ``chat_id``, ``text`` of
  1-4096 characters); errors ``{"ok": false, "error_code", "description"}``, a 429 with
  ``parameters.retry_after``.
- Slack ``POST /slack/api/chat.postMessage`` (Bearer bot token; ``channel``, ``text``,
  at most 40,000 characters); errors as HTTP 200 ``{"ok": false, "error"}``, a 429 with
  ``Retry-After``.
- Twilio ``POST /twilio/2010-04-01/Accounts/{sid}/Messages.json`` (HTTP basic auth with the
  account SID and auth token; form ``To``, ``From``, ``Body`` of at most 1,600
  characters, optional ``StatusCallback``, recorded); 201 with the message ``sid``.
- WhatsApp ``POST /whatsapp/v21.0/{phone-number-id}/messages`` (Bearer access token;
  ``messaging_product: whatsapp``, ``to``, and ``text.body`` of at most 4,096 characters or
  a ``template`` with ``name`` and ``language.code``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TELEGRAM_LIMIT, SLACK_LIMIT, TWILIO_LIMIT, WHATSAPP_LIMIT = 4096, 40_000, 1600, 4096


@dataclass(frozen=True)
class Received:
    provider: str
    credential: str  # the token, account or phone number id the request was made with
    to: str
    text: str
    payload: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class ProviderStandIns:
    def __init__(self) -> None:
        self.telegram_tokens: set[str] = set()
        self.slack_tokens: set[str] = set()
        self.twilio_accounts: dict[str, str] = {}  # sid -> auth token
        self.whatsapp_phones: dict[str, str] = {}  # phone number id -> access token
        self.received: list[Received] = []
        self.refused: list[tuple[str, int, str]] = []  # (provider, status, why)
        self.requests = 0
        self._faults: dict[str, deque[str]] = {}
        self._unreachable: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.hang_seconds = 30.0

    # ------------------------------------------------------------------ control

    def fail(self, provider: str, *answers: str) -> None:
        """The next requests to ``provider`` get these answers in turn: "429", "500",
        "503", "hang" (no answer for ``hang_seconds``, then a 504 nothing is recorded for)
        or "ok" (handled as usual)."""
        self._faults.setdefault(provider, deque()).extend(answers)

    def fail_clear(self) -> None:
        """Forget the planned answers: every provider answers as usual again."""
        self._faults.clear()

    def refuse_recipient(self, provider: str, to: str) -> None:
        """Every message to ``to`` fails as an invalid recipient does."""
        self._unreachable.add((provider, to))

    def sent(self, provider: str | None = None, to: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if (provider is None or r.provider == provider) and (to is None or r.to == to)
        ]

    @property
    def telegram_api(self) -> str:
        return f"{self.base_url}/telegram"

    @property
    def slack_api(self) -> str:
        return f"{self.base_url}/slack"

    @property
    def twilio_api(self) -> str:
        return f"{self.base_url}/twilio"

    @property
    def whatsapp_api(self) -> str:
        return f"{self.base_url}/whatsapp/v21.0"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/telegram/bot{token}/sendMessage", self._telegram)
        app.router.add_post("/slack/api/chat.postMessage", self._slack)
        app.router.add_post("/twilio/2010-04-01/Accounts/{sid}/Messages.json", self._twilio)
        app.router.add_post("/whatsapp/v21.0/{phone}/messages", self._whatsapp)
        # A client that gives up on a hanging request cancels its handler.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.base_url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()

    # ------------------------------------------------------------------ helpers

    async def _fault(self, provider: str) -> str | None:
        self.requests += 1
        queue = self._faults.get(provider)
        if not queue:
            return None
        answer = queue.popleft()
        if answer == "hang":
            await asyncio.sleep(self.hang_seconds)
            return "504"
        return None if answer == "ok" else answer

    def _refuse(self, provider: str, status: int, why: str, body: Any, **kw: Any) -> web.Response:
        self.refused.append((provider, status, why))
        return web.json_response(body, status=status, **kw)

    def _accept(self, provider: str, credential: str, to: str, text: str, payload: Any) -> int:
        self.received.append(Received(provider, credential, to, text, payload))
        return next(self._ids)

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.read())
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _bearer(request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return header[7:] if header.startswith("Bearer ") else ""

    # ------------------------------------------------------------------ Telegram

    async def _telegram(self, request: web.Request) -> web.Response:
        def error(status: int, description: str, **extra: Any) -> web.Response:
            body = {"ok": False, "error_code": status, "description": description, **extra}
            return self._refuse("telegram", status, description, body)

        fault = await self._fault("telegram")
        if fault == "429":
            return error(429, "Too Many Requests: retry after 1", parameters={"retry_after": 1})
        if fault is not None:
            return error(int(fault), "Internal Server Error")
        token = request.match_info["token"]
        if token not in self.telegram_tokens:
            return error(401, "Unauthorized")
        data = await self._json(request)
        if data is None or "chat_id" not in data or not isinstance(data.get("text"), str):
            return error(400, "Bad Request: chat_id and text are required")
        text, chat = data["text"], str(data["chat_id"])
        if not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text) > TELEGRAM_LIMIT:
            return error(400, "Bad Request: message is too long")
        if ("telegram", chat) in self._unreachable:
            return error(400, "Bad Request: chat not found")
        number = self._accept("telegram", token, chat, text, data)
        return web.json_response({"ok": True, "result": {"message_id": number, "text": text}})

    # ------------------------------------------------------------------ Slack

    async def _slack(self, request: web.Request) -> web.Response:
        def error(reason: str, status: int = 200, **kw: Any) -> web.Response:
            return self._refuse("slack", status, reason, {"ok": False, "error": reason}, **kw)

        fault = await self._fault("slack")
        if fault == "429":
            return error("ratelimited", 429, headers={"Retry-After": "1"})
        if fault is not None:
            return error("internal_error", int(fault))
        token = self._bearer(request)
        if token not in self.slack_tokens:
            return error("invalid_auth")
        data = await self._json(request)
        if data is None or not isinstance(data.get("channel"), str):
            return error("channel_not_found")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return error("no_text")
        if len(text) > SLACK_LIMIT:
            return error("msg_too_long")
        if ("slack", data["channel"]) in self._unreachable:
            return error("channel_not_found")
        number = self._accept("slack", token, data["channel"], text, data)
        return web.json_response({"ok": True, "channel": data["channel"], "ts": f"{number}.0001"})

    # ------------------------------------------------------------------ Twilio

    async def _twilio(self, request: web.Request) -> web.Response:
        def error(status: int, code: int, message: str, **kw: Any) -> web.Response:
            body = {"code": code, "message": message, "status": status}
            return self._refuse("sms", status, message, body, **kw)

        fault = await self._fault("sms")
        if fault == "429":
            return error(429, 20429, "Too Many Requests", headers={"Retry-After": "1"})
        if fault is not None:
            return error(int(fault), 20500, "Internal Server Error")
        sid = request.match_info["sid"]
        try:
            scheme, encoded = request.headers.get("Authorization", "").split(" ", 1)
            user, password = base64.b64decode(encoded).decode().split(":", 1)
        except ValueError:
            return error(401, 20003, "Authenticate")
        if scheme != "Basic" or user != sid or self.twilio_accounts.get(sid) != password:
            return error(401, 20003, "Authenticate")
        form = await request.post()
        to, sender, body = form.get("To"), form.get("From"), form.get("Body")
        if not isinstance(to, str) or not isinstance(sender, str) or not to or not sender:
            return error(400, 21604, "A 'To' and 'From' phone number are required")
        if not isinstance(body, str) or not body:
            return error(400, 21602, "Message body is required")
        if len(body) > TWILIO_LIMIT:
            return error(400, 21617, "The concatenated message body exceeds the 1600 limit")
        if ("sms", to) in self._unreachable:
            return error(400, 21211, "The 'To' number is not a valid phone number")
        payload = {"To": to, "From": sender, "Body": body}
        callback = form.get("StatusCallback")
        if isinstance(callback, str):  # where Twilio would report the message's status
            payload["StatusCallback"] = callback
        number = self._accept("sms", sid, to, body, payload)
        return web.json_response({"sid": f"SM{number:032x}", "status": "queued"}, status=201)

    # ------------------------------------------------------------------ WhatsApp

    async def _whatsapp(self, request: web.Request) -> web.Response:
        def error(status: int, code: int, message: str) -> web.Response:
            body = {"error": {"message": message, "type": "OAuthException", "code": code}}
            return self._refuse("whatsapp", status, message, body)

        fault = await self._fault("whatsapp")
        if fault == "429":
            return error(429, 130429, "Rate limit hit")
        if fault is not None:
            return error(int(fault), 131000, "Something went wrong")
        phone = request.match_info["phone"]
        token = self._bearer(request)
        if not token or token != self.whatsapp_phones.get(phone):
            return error(401, 190, "Invalid OAuth access token")
        data = await self._json(request)
        if data is None or data.get("messaging_product") != "whatsapp" or not data.get("to"):
            return error(400, 100, "messaging_product and to are required")
        to, kind = str(data["to"]), data.get("type", "text")
        if kind == "text":
            text = (data.get("text") or {}).get("body")
            if not isinstance(text, str) or not text:
                return error(400, 100, "text.body is required")
            if len(text) > WHATSAPP_LIMIT:
                return error(400, 100, "text.body is too long")
        elif kind == "template":
            template = data.get("template") or {}
            if not template.get("name") or not (template.get("language") or {}).get("code"):
                return error(400, 132000, "template name and language.code are required")
            text = f"[template {template['name']}]"
        else:
            return error(400, 100, f"unsupported type {kind}")
        if ("whatsapp", to) in self._unreachable:
            return error(400, 131026, "Message undeliverable")
        number = self._accept("whatsapp", phone, to, text, data)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.{number:020d}"}],
            }
        )
