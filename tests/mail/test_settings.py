"""The e-mail settings: a password never travels in clear outside development, and the
From address must be an address."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from coachops_runtime.auth.keys import generate_key_file
from coachops_runtime.kit.settings import Settings


def production(tmp_path: Path, **smtp: object) -> Settings:
    generate_key_file(tmp_path, "2026-01-01")
    values: dict[str, object] = {
        "environment": "production",
        "database_url": "postgresql://coachops_runtime:s3cr3t-db@db/coachops",
        "redis_url": "redis://:s3cr3t-redis@redis:6379/0",
        "jwt_keys_dir": tmp_path,
        **smtp,
    }
    return Settings.model_validate(values)


def test_production_refuses_an_smtp_password_without_tls(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="COACHOPS_SMTP_PASSWORD would travel in clear"):
        production(tmp_path, smtp_username="coachops", smtp_password="pw", smtp_tls="none")
    assert production(tmp_path, smtp_password="pw", smtp_tls="starttls").smtp_tls == "starttls"
    assert production(tmp_path, smtp_tls="none").smtp_tls == "none"  # no password: fine


def test_the_from_address_must_be_an_address(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="COACHOPS_MAIL_FROM needs an address"):
        production(tmp_path, mail_from="coachops")
    assert production(tmp_path, mail_from="Coach <c@example.com>").mail_from == (
        "Coach <c@example.com>"
    )
