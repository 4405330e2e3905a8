"""Pure parts of the channels: splitting, keywords, the HTTP error mapping, credentials."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from coachops_runtime.channels.adapter import classify
from coachops_runtime.channels.credentials import CredentialsUnreadableError, decrypt
from coachops_runtime.channels.keywords import answer, keyword
from coachops_runtime.channels.splitting import split


@given(st.text(min_size=1, max_size=3000), st.integers(min_value=20, max_value=500))
def test_split_parts_fit_and_keep_every_non_space_character(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(len(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_split_prefers_paragraphs_then_words() -> None:
    text = "a" * 60 + "\n\n" + "b" * 30 + " " + "c" * 30
    assert split(text, 80) == ["a" * 60, "b" * 30 + " " + "c" * 30]
    assert split("short", 4096) == ["short"]


@pytest.mark.parametrize(
    ("text", "action", "language"),
    [
        ("STOP", "stop", "en"),
        (" stop. ", "stop", "en"),
        ("Unsubscribe", "stop", "en"),
        ("ARRÊT", "stop", "fr"),
        ("baja", "stop", "es"),
        ("Stopp", "stop", "de"),
        ("START", "start", "en"),
        ("anmelden", "start", "de"),
        ("help", "help", "en"),
        ("AYUDA", "help", "es"),
        ("aiuto!", "help", "it"),
        ("ajuda", "help", "pt"),
    ],
)
def test_keywords(text: str, action: str, language: str) -> None:
    found = keyword(text)
    assert found is not None
    assert (found.action, found.language) == (action, language)
    assert "Sleep" in answer(found, "Sleep")


@pytest.mark.parametrize("text", ["stop it now", "yes", "I want to start running", "helpful"])
def test_sentences_are_not_keywords(text: str) -> None:
    assert keyword(text) is None


def test_classify() -> None:
    limited = classify(429, "7", "slow down")
    assert (limited.final, limited.retry_after) == (False, 7.0)
    assert classify(503, None, "x").final is False
    assert classify(408, None, "x").final is False
    assert classify(400, None, "bad chat").final is True
    assert classify(401, None, "bad token").final is True
    assert classify(429, "soon", "x").retry_after is None


def test_credentials_decrypt_and_never_print_values() -> None:
    key = Fernet.generate_key().decode()
    token = Fernet(key).encrypt(b'{"bot-token": "123:secret"}')
    credentials = decrypt(SecretStr(key), token)
    assert credentials["bot-token"] == "123:secret"
    assert "secret" not in repr(credentials)
    with pytest.raises(CredentialsUnreadableError):
        decrypt(SecretStr(Fernet.generate_key().decode()), token)
    with pytest.raises(CredentialsUnreadableError):
        decrypt(SecretStr(key), Fernet(key).encrypt(b'["not", "a", "map"]'))
