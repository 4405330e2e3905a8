"""The e-mail settings: a password never travels in clear outside development, and the
From address must be an address."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.mark.parametrize(
    ("module", "program"),
    [
        ("coachops_runtime", "coachops-runtime"),
        ("coachops_runtime.worker", "coachops-worker"),
        ("coachops_runtime.proactive", "coachops-scheduler"),
    ],
)
def test_a_process_with_unsafe_settings_exits_2_saying_why(
    module: str, program: str, tmp_path: Path
) -> None:
    """Every entry point refuses production settings with a default secret: exit code 2
    and one line naming the process and the setting, no traceback."""
    env = {
        "PATH": os.environ["PATH"],
        "COACHOPS_ENVIRONMENT": "production",
        "COACHOPS_DATABASE_URL": "postgresql://coachops_runtime@db/coachops",  # no password
        "COACHOPS_REDIS_URL": "redis://:s3cr3t@redis:6379/0",
        "COACHOPS_JWT_KEYS_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{program}: invalid settings:"), done.stderr
    assert "Traceback" not in done.stderr
