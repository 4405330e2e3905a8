"""The form fields of an inbound-mail webhook: Mailgun posts
``application/x-www-form-urlencoded``, or ``multipart/form-data`` when the mail has
attachments (whose file parts are not read)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import default
from urllib.parse import parse_qsl

from coachops_runtime.channels.adapter import HookRequest, MalformedHookError


def fields(request: HookRequest) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return _multipart(content_type, request.body)
    if media in ("application/x-www-form-urlencoded", ""):
        try:
            return dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        except UnicodeDecodeError as error:
            raise MalformedHookError("the form is not UTF-8") from error
    raise MalformedHookError(f"an inbound mail is a form, not {media[:60]}")


def _multipart(content_type: str, body: bytes) -> dict[str, str]:
    # The e-mail parser reads multipart/form-data once it is given the boundary header.
    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(envelope + body)
    if not message.is_multipart() or message.defects:
        raise MalformedHookError("the multipart form does not parse")
    found: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue  # attachments are not part of the conversation
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        found[name] = raw.decode(part.get_content_charset() or "utf-8", errors="replace")
    return found
