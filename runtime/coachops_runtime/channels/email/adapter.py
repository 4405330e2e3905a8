"""E-mail: Mailgun inbound routes in (https://documentation.mailgun.com, "Receiving
messages via HTTP through a forward() action"), SMTP out through the runtime's mail sender.

Inbound: a route forwarding the program's address to the webhook POSTs the parsed mail as
a form. Mailgun signs it in three of its fields: ``signature`` is the hex HMAC-SHA256 of
``timestamp`` followed by ``token``, keyed with the domain's HTTP webhook signing key (the
Secret's ``webhook-secret``). The signature is inside the body, so the form envelope is
read for those three fields before anything else of it is used. A timestamp more than 5
minutes ahead or older than ``MAX_AGE_SECONDS`` is refused; the token is recorded, so a
captured signature cannot carry a second message. The mail's ``Message-ID`` makes it
processed once; the sender is its ``From`` address (lower case); the text is
``body-plain`` with the quoted earlier mail and the signature cut off (``quoting.py``,
not Mailgun's own ``stripped-text``, so what is kept does not depend on the provider).

Outbound: one reply per delivery (no splitting), from the Secret's ``from-address`` (the
address the route forwards, so replies come back), threaded and with one-click
unsubscribe (``message.py``), sent over SMTP; the Message-ID is the provider id recorded.
Mailgun's event webhooks at the same URL report what became of it (``events.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from email.utils import parseaddr
from typing import Any

import aiohttp
from pydantic import SecretStr

from coachops_runtime.channels.adapter import (
    Capabilities,
    DeliveryError,
    HookRejectedError,
    HookRequest,
    Inbound,
    MalformedHookError,
    Outgoing,
    Parsed,
    Thread,
)
from coachops_runtime.channels.credentials import Credentials
from coachops_runtime.channels.email import events, message, unsubscribe
from coachops_runtime.channels.email.form import fields
from coachops_runtime.channels.email.quoting import strip_quoted
from coachops_runtime.mail.outbox import Sender
from coachops_runtime.mail.smtp import DeliveryError as SmtpDeliveryError

# Mailgun retries a route POST that failed for 8 hours; whether a retry is signed anew is
# not documented, so a signature stays acceptable that long (the token stops replays).
MAX_AGE_SECONDS = 8.5 * 3600
MAX_AHEAD_SECONDS = 300
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def _ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def _headers(form: dict[str, str]) -> dict[str, str]:
    """The mail's headers by lower-case name (the first of each): Mailgun's
    ``message-headers`` (a JSON list of [name, value]), else the form's own fields."""
    found: dict[str, str] = {}
    try:
        listed: Any = json.loads(form.get("message-headers") or "[]")
    except ValueError:
        listed = []
    for pair in listed if isinstance(listed, list) else ():
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
            found.setdefault(pair[0].lower(), pair[1])
    for name in ("Message-Id", "In-Reply-To", "References", "Subject", "From"):
        if name in form:
            found.setdefault(name.lower(), form[name])
    return found


class EmailAdapter:
    channel = "email"
    capabilities = Capabilities(max_length=100_000, splits=False, streaming=False, templates=False)
    credential_keys = ("from-address", "webhook-secret")

    def __init__(self, sender: Sender | None, unsubscribe_base: str, key: SecretStr | None) -> None:
        self.sender = sender
        self.unsubscribe_base = unsubscribe_base
        self.key = key

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        form = events.signature(request) if events.is_event(request) else fields(request)
        timestamp, token = form.get("timestamp", ""), form.get("token", "")
        signature = form.get("signature", "")
        expected = hmac.new(
            credentials["webhook-secret"].encode(), f"{timestamp}{token}".encode(), hashlib.sha256
        ).hexdigest()
        if not (timestamp and token) or not hmac.compare_digest(
            signature.encode(), expected.encode()
        ):
            raise HookRejectedError("the Mailgun signature does not match this program's key")
        try:
            age = now - int(timestamp)
        except ValueError:
            raise HookRejectedError("the Mailgun timestamp is not a number") from None
        if age > MAX_AGE_SECONDS or age < -MAX_AHEAD_SECONDS:
            raise HookRejectedError("the Mailgun timestamp is too old or in the future")

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        raise HookRejectedError("Mailgun routes have no subscription check")

    def parse(self, request: HookRequest) -> Parsed:
        if events.is_event(request):
            return events.parse(request)
        form = fields(request)
        headers = _headers(form)
        name, address = parseaddr(form.get("from") or headers.get("from", ""))
        address = address.strip().lower()
        if "@" not in address:
            raise MalformedHookError("an inbound mail needs a From address")
        token = form.get("token", "")
        ids = _ids(headers.get("message-id"))
        # A mail without a Message-ID is still processed once per signed request.
        own = ids[0] if ids else f"<mailgun.{token}@coachops.invalid>"
        chain = _ids(headers.get("references")) or _ids(headers.get("in-reply-to"))
        subject = form.get("subject") or headers.get("subject", "")
        thread = Thread(own, tuple(chain[-(message.MAX_REFERENCES - 1) :]), subject)
        text = strip_quoted(form.get("body-plain", ""))
        inbound = Inbound(
            provider_key=own,
            sender=address,
            address=address,
            text=text,
            display_name=message.one_line(name)[:200],
            thread=thread,
            also_once=(f"mailgun-token:{token}",),
        )
        return Parsed([inbound])

    def acknowledgement(self) -> tuple[bytes, str]:
        return b"", "text/plain"

    async def send(
        self, http: aiohttp.ClientSession, credentials: Credentials, outgoing: Outgoing
    ) -> str:
        about = outgoing.about
        if self.sender is None or about is None or self.key is None:
            raise DeliveryError("e-mail replies are sent by the worker only")
        link = unsubscribe.link(
            self.unsubscribe_base,
            about.program_id,
            unsubscribe.token(self.key, about.program_id, about.end_user_id),
        )
        mail = message.build(
            credentials["from-address"], outgoing.address, outgoing.text, about, link
        )
        try:
            await self.sender.send(mail)
        except SmtpDeliveryError as error:
            raise DeliveryError(error.reason, final=error.final) from error
        return str(mail["Message-ID"])
