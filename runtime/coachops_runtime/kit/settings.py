"""Runtime settings from ``COACHOPS_*`` environment variables (pydantic-settings).

Outside development the runtime refuses to start with a default or empty secret: a DSN
without a password, a Redis URL without one, an SMTP password without TLS, or no JWT key
(neither a ``*.pem`` file in the key directory nor ``COACHOPS_JWT_PUBLIC_KEYS``).

A dedicated runtime (``COACHOPS_TENANT`` set, as the operator's Deployment sets it) serves
one tenant: it logs in with that tenant's database role and verifies tokens with the
platform's public keys only.
"""

from __future__ import annotations

import sys
import uuid
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from coachops_crds.constants import tenant_id

DEFAULT_SECRETS = frozenset({"", "changethis", "change-me", "password", "secret", "postgres"})


class SettingsError(ValueError):
    """The settings are unsafe for the environment they run in."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COACHOPS_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: SecretStr = Field(
        description="DSN of the shared runtime role (never the schema owner)."
    )
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    chroma_url: str = ""
    ollama_url: str = ""
    jwt_keys_dir: Path = Path("/var/run/secrets/coachops/jwt")
    jwt_issuer: str = "https://coachops.dev"
    jwt_public_keys: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "JSON object kid -> PEM public key. When set, tokens are verified with these keys "
            "only and never signed here (a dedicated runtime; the operator passes the "
            "platform's public keys); the key directory is not read."
        ),
    )
    tenant: str = Field(
        "",
        description=(
            "The Creator a dedicated runtime serves; its database role must be bound to that "
            "tenant. Empty: the shared runtime."
        ),
    )
    access_token_seconds: int = 900
    refresh_token_seconds: int = 30 * 24 * 3600
    end_user_token_seconds: int = 7 * 24 * 3600
    action_token_seconds: int = 3600
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where people reach the product; links in e-mails start with it.",
    )
    # E-mail delivery (the worker's outbox poller).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none: plain SMTP; starttls: upgrade required; tls: implicit TLS"
    )
    smtp_timeout_seconds: float = Field(15.0, gt=0)
    mail_from: str = "coachops <no-reply@coachops.dev>"
    mail_max_attempts: int = Field(8, ge=1, description="then the e-mail is marked dead")
    mail_retry_base_seconds: float = Field(30.0, gt=0)
    mail_retry_max_seconds: float = Field(3600.0, gt=0)
    mail_concurrency: int = Field(4, ge=1, description="e-mails one worker sends at once")
    worker_poll_seconds: float = Field(1.0, gt=0)
    worker_metrics_port: int = Field(
        0, ge=0, le=65535, description="port of the worker's /metrics (0: not served)"
    )
    # Knowledge: uploads (API) and ingestion (the worker's knowledge poller).
    knowledge_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, description="largest knowledge document accepted (413 above)"
    )
    knowledge_chunk_words: int = Field(150, ge=10, description="words per chunk at most")
    knowledge_chunk_overlap: float = Field(
        0.15, ge=0, lt=1, description="share of a chunk repeated in the next one"
    )
    knowledge_embed_batch: int = Field(32, ge=1, description="chunks per Ollama /api/embed call")
    knowledge_concurrency: int = Field(2, ge=1, description="documents one worker ingests at once")
    knowledge_max_attempts: int = Field(5, ge=1, description="then the document is marked failed")
    knowledge_retry_base_seconds: float = Field(5.0, gt=0)
    knowledge_timeout_seconds: float = Field(120.0, gt=0, description="per Ollama or Chroma call")
    model_registry: str = Field(
        "",
        description=(
            "The operator's model registry setting: a model name without a host is held by "
            "Ollama as registry/name."
        ),
    )
    kubeconfig: Path | None = Field(
        None, validation_alias=AliasChoices("COACHOPS_KUBECONFIG", "KUBECONFIG")
    )
    db_pool_size: int = 20
    tenant_cache_seconds: float = 5.0
    end_user_requests_per_second: int = Field(
        5, ge=1, description="Requests per second (and burst) each end user may make."
    )
    log_level: str = "INFO"

    @field_validator("kubeconfig", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("mail_from")
    @classmethod
    def _one_address(cls, value: str) -> str:
        _name, address = parseaddr(value)
        if "@" not in address:
            raise ValueError("COACHOPS_MAIL_FROM needs an address, e.g. 'coachops <a@b.c>'")
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.environment == "development":
            return self
        problems = []
        db_password = urlsplit(self.database_url.get_secret_value()).password or ""
        if db_password in DEFAULT_SECRETS:
            problems.append("COACHOPS_DATABASE_URL has an empty or default password")
        redis_password = urlsplit(self.redis_url.get_secret_value()).password or ""
        if redis_password in DEFAULT_SECRETS:
            problems.append("COACHOPS_REDIS_URL has an empty or default password")
        if self.smtp_password.get_secret_value() and self.smtp_tls == "none":
            problems.append("COACHOPS_SMTP_PASSWORD would travel in clear: set COACHOPS_SMTP_TLS")
        no_key_file = not self.jwt_keys_dir.is_dir() or not any(self.jwt_keys_dir.glob("*.pem"))
        if not self.jwt_public_keys and no_key_file:
            problems.append(f"COACHOPS_JWT_KEYS_DIR ({self.jwt_keys_dir}) holds no *.pem key")
        if problems:
            raise SettingsError(f"refusing to start in {self.environment}: " + "; ".join(problems))
        return self

    @property
    def tenant_id(self) -> uuid.UUID | None:
        """The dedicated tenant's id (derived from its name, as the operator derives it)."""
        return tenant_id(self.tenant) if self.tenant else None

    @cached_property
    def sqlalchemy_url(self) -> str:
        dsn = self.database_url.get_secret_value()
        for scheme in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
            if dsn.startswith(scheme):
                return "postgresql+asyncpg://" + dsn[len(scheme) :]
        raise SettingsError("COACHOPS_DATABASE_URL must be a postgresql:// DSN")

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL as asyncpg takes it (the pool, LISTEN connections)."""
        return self.sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def settings_or_exit(program: str) -> Settings:
    """The settings from the environment, for a process's entry point: invalid ones end
    the process with exit code 2 and one line on stderr that starts with ``program``."""
    try:
        return Settings()
    except (ValidationError, ValueError) as error:
        print(f"{program}: invalid settings: {error}", file=sys.stderr)
        raise SystemExit(2) from error
