"""Signed one-click unsubscribe links (RFC 8058).

A link names the program in its path and carries a token: the end user's id and an
HMAC-SHA256 over program and end user, keyed with a key derived from the channel key
(``COACHOPS_CHANNEL_KEY``), which the API and the worker both hold. A token works for its
own program and end user only, and does not expire: a mail may be read months later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid

from pydantic import SecretStr

_PURPOSE = b"coachops e-mail unsubscribe v1"
_MAC_BYTES = 18


def _mac(key: SecretStr, program_id: uuid.UUID, end_user_id: uuid.UUID) -> bytes:
    derived = hmac.new(key.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()
    message = f"{program_id}:{end_user_id}".encode()
    return hmac.new(derived, message, hashlib.sha256).digest()[:_MAC_BYTES]


def token(key: SecretStr, program_id: uuid.UUID, end_user_id: uuid.UUID) -> str:
    mac = base64.urlsafe_b64encode(_mac(key, program_id, end_user_id)).decode()
    return f"{end_user_id.hex}.{mac}"


def end_user_of(key: SecretStr, program_id: uuid.UUID, value: str) -> uuid.UUID | None:
    """The end user a token was made for, when it was made for this program; else None."""
    user, _, mac = value.partition(".")
    try:
        end_user_id = uuid.UUID(hex=user)
        given = base64.urlsafe_b64decode(mac.encode())
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(given, _mac(key, program_id, end_user_id)):
        return None
    return end_user_id


def link(base_url: str, program_id: uuid.UUID, value: str) -> str:
    return f"{base_url.rstrip('/')}/v1/hooks/email/{program_id}/unsubscribe?token={value}"
