"""One outbox row as an e-mail message."""

from __future__ import annotations

import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from coachops_runtime.mail.templates import Rendered, TemplateError


def build_message(
    email_id: uuid.UUID, sender: str, to_address: str, rendered: Rendered
) -> EmailMessage:
    """The message, with a Message-ID derived from the outbox row: should a message go out
    twice (sent, then the worker died before recording it), both copies carry one id."""
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = Address(addr_spec=to_address)
        message["Subject"] = rendered.subject
    except (ValueError, IndexError) as error:  # the header parser's complaints
        raise TemplateError(f"unusable header: {type(error).__name__}") from None
    domain = parseaddr(sender)[1].rpartition("@")[2] or "coachops.invalid"
    message["Message-ID"] = f"<{email_id}@{domain}>"
    message["Date"] = formatdate(usegmt=True)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
