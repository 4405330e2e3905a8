"""One outgoing reply as an e-mail: text and HTML parts, threading and unsubscribe headers.

The Message-ID is derived from the delivery, so a retried delivery carries the same one.
``In-Reply-To`` names the end user's latest mail and ``References`` its chain followed by
it (the first id and the latest 19 when longer), so the end user's client shows the reply
in the thread. The subject is the thread's, with one "Re: ". ``List-Unsubscribe`` (the
signed HTTPS link) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` make the
one-click unsubscribe of RFC 8058; the link is in both bodies too.
"""

from __future__ import annotations

import html
import re
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy, default
from email.utils import formatdate

from coachops_runtime.channels.adapter import About, DeliveryError

MAX_REFERENCES = 20


class _OneLine(UnstructuredHeader):
    """A header never folded. The unsubscribe link is one long token: folded at 78
    characters (by whatever policy the SMTP client flattens with) it would become an RFC
    2047 encoded word, which no mail client reads as a URI. One line stays well within
    RFC 5322's 998 characters."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"  # type: ignore[attr-defined]


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", _OneLine)  # type: ignore[arg-type]  # a mixin, as the stdlib's
_POLICY = default.clone(header_factory=_HEADERS)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fw|fwd|wg|tr|rv)\s*:\s*)+", re.IGNORECASE)


def one_line(value: str) -> str:
    """Text fit for a header: control characters (line breaks above all) become spaces."""
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value).split())


def message_id(about: About, from_address: str) -> str:
    domain = from_address.rpartition("@")[2] or "coachops.invalid"
    return f"<coachops.{about.delivery_id}.{about.program_id.hex}@{domain}>"


def subject(about: About) -> str:
    thread_subject = one_line(about.thread.subject) if about.thread else ""
    base = _REPLY_PREFIX.sub("", thread_subject).strip()
    return f"Re: {base}" if base else one_line(about.program_title) or "Your coach"


def references(about: About) -> list[str]:
    if about.thread is None:
        return []
    chain = [*about.thread.references, about.thread.message_id]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def build(from_address: str, to: str, text: str, about: About, unsubscribe: str) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    try:
        message["From"] = Address(
            display_name=one_line(about.program_title), addr_spec=from_address
        )
        message["To"] = Address(addr_spec=to)
    except (ValueError, IndexError) as error:  # the header parser's complaints
        raise DeliveryError(f"unusable address: {type(error).__name__}", final=True) from None
    message["Subject"] = subject(about)
    message["Message-ID"] = message_id(about, from_address)
    message["Date"] = formatdate(usegmt=True)
    chain = references(about)
    if chain:
        message["In-Reply-To"] = chain[-1]
        message["References"] = " ".join(chain)
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    footer = f"To stop these e-mails: {unsubscribe}"
    message.set_content(f"{text}\n\n-- \n{footer}\n")
    paragraphs = "".join(
        f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>"
        for block in re.split(r"\n\s*\n", text.strip())
        if block.strip()
    )
    link = html.escape(unsubscribe, quote=True)
    message.add_alternative(
        f"<!DOCTYPE html><html><body>{paragraphs}"
        f'<hr><p style="font-size:small">To stop these e-mails, <a href="{link}">unsubscribe</a>.'
        "</p></body></html>",
        subtype="html",
    )
    return message
