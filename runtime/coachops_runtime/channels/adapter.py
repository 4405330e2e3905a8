"""The one interface every channel implements, and the values that cross it.

Inbound: ``verify`` checks the provider's signature on the raw request before anything is
parsed, ``parse`` turns the verified body into messages (each with the provider's id, the
sender's identity and the address replies go to). Outbound: ``send`` delivers one part and
maps the provider's answer to success (its message id) or a ``DeliveryError`` saying
whether to retry and when. ``capabilities`` say how long a part may be and what else the
provider offers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import aiohttp

from coachops_runtime.channels.credentials import Credentials
from coachops_runtime.kit.errors import CoachopsError


@dataclass(frozen=True)
class Capabilities:
    max_length: int  # characters of one message; longer text is split into parts
    splits: bool  # whether a longer text may be sent as several messages
    streaming: bool  # whether a reply could be edited in place as it is generated
    templates: bool  # whether pre-approved templates exist (WhatsApp)
    window_hours: int | None = None  # free-form replies only this long after the last inbound
    keywords: bool = False  # STOP/START/HELP apply (SMS and WhatsApp)


@dataclass(frozen=True)
class HookRequest:
    """The raw webhook request: nothing in it is trusted before ``verify`` passes."""

    method: str
    url: str  # as the provider called it (the public URL when one is configured)
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Thread:
    """An e-mail's place in its thread (RFC 5322): its Message-ID, the References chain
    before it, its subject."""

    message_id: str
    references: tuple[str, ...] = ()
    subject: str = ""


@dataclass(frozen=True)
class Inbound:
    provider_key: str  # the provider's id of this message: what makes it processed once
    sender: str  # the identity on this channel (chat id, phone number, Slack user)
    address: str  # where replies go (chat id, phone number, Slack conversation)
    text: str
    display_name: str = ""
    locale: str | None = None
    thread: Thread | None = None  # e-mail: what replies thread under
    # Further keys seen at most once (Mailgun's signing token: a replayed signature
    # carrying another message is a duplicate too).
    also_once: tuple[str, ...] = ()


StatusName = Literal["sent", "delivered", "read", "failed"]
STATUS_RANK: Mapping[str, int] = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's report on a message it was given (Twilio status callback, WhatsApp
    ``statuses``), by the provider's message id."""

    provider_id: str
    status: StatusName
    error: str | None = None


@dataclass(frozen=True)
class Parsed:
    messages: list[Inbound] = field(default_factory=list)
    # An answer the provider expects instead of the usual acknowledgement (Slack's
    # url_verification challenge).
    reply: Mapping[str, str] | None = None
    statuses: list[StatusUpdate] = field(default_factory=list)


@dataclass(frozen=True)
class Template:
    name: str
    language: str


@dataclass(frozen=True)
class About:
    """The delivery a part belongs to: what status callback URLs and e-mail headers name."""

    delivery_id: int
    program_id: uuid.UUID
    end_user_id: uuid.UUID
    program_title: str
    thread: Thread | None = None  # e-mail: the end user's latest mail and its chain


@dataclass(frozen=True)
class Outgoing:
    address: str
    text: str
    template: Template | None = None  # WhatsApp outside the 24-hour window
    about: About | None = None


class HookRejectedError(CoachopsError):
    """A webhook whose signature, token or timestamp does not verify."""

    status, slug, title = 401, "webhook-rejected", "Webhook signature not valid"


class MalformedHookError(CoachopsError):
    status, slug, title = 400, "webhook-malformed", "Webhook body not understood"


class DeliveryError(Exception):
    """A part was not delivered. ``final``: retrying cannot help (bad recipient, revoked
    token); ``retry_after``: the provider's own wait (429), in seconds."""

    def __init__(self, reason: str, *, final: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.final = final
        self.retry_after = retry_after


class Adapter(Protocol):
    @property
    def channel(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def credential_keys(self) -> tuple[str, ...]: ...

    def verify(self, request: HookRequest, credentials: Credentials, now: float) -> None:
        """Raise ``HookRejectedError`` unless the request is signed with ``credentials``."""

    def handshake(self, request: HookRequest, credentials: Credentials) -> str:
        """The answer to a provider's GET subscription check; ``HookRejectedError`` otherwise."""

    def parse(self, request: HookRequest) -> Parsed:
        """The messages of a verified request; ``MalformedHookError`` when it is not JSON/form as
        documented. Updates that are not text messages are left out."""

    def acknowledgement(self) -> tuple[bytes, str]:
        """Body and media type of the answer to an accepted webhook."""

    async def send(
        self, http: aiohttp.ClientSession, credentials: Credentials, outgoing: Outgoing
    ) -> str:
        """Deliver one part; the provider's message id, or ``DeliveryError``."""


def classify(status: int, retry_after: str | None, reason: str) -> DeliveryError:
    """The common HTTP mapping: 429 waits as told, 408/5xx retry, other 4xx give up."""
    wait: float | None = None
    if retry_after is not None:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    if status == 429:
        return DeliveryError(f"HTTP 429: {reason}", retry_after=wait)
    if status == 408 or status >= 500:
        return DeliveryError(f"HTTP {status}: {reason}", retry_after=wait)
    return DeliveryError(f"HTTP {status}: {reason}", final=True)


async def read_json(response: aiohttp.ClientResponse) -> dict[str, object]:
    """A provider's JSON answer; an empty dict when it is not a JSON object."""
    try:
        data = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return data if isinstance(data, dict) else {}
