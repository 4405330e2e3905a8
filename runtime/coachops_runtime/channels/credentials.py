"""The decrypt side of channel credentials (the operator encrypts, channels.py there)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class CredentialsUnreadableError(Exception):
    """The row cannot be decrypted with the configured key (wrong or rotated key)."""


class Credentials:
    """A channel's keys, decrypted; ``repr`` never shows a value."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __repr__(self) -> str:
        return f"Credentials(keys={sorted(self._values)})"


def decrypt(key: SecretStr, ciphertext: bytes) -> Credentials:
    try:
        plain = Fernet(key.get_secret_value()).decrypt(ciphertext)
        values = json.loads(plain)
    except (InvalidToken, ValueError) as error:
        raise CredentialsUnreadableError("credentials do not decrypt with this key") from error
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise CredentialsUnreadableError("channel credentials are not a map of strings")
    return Credentials(values)
