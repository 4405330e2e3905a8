"""Runtime settings from ``COACHOPS_*`` environment variables (pydantic-settings).

Outside development the runtime refuses to start with a default or empty secret: a DSN
without a password, a Redis URL without one, or an empty JWT key directory.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    access_token_seconds: int = 900
    refresh_token_seconds: int = 30 * 24 * 3600
    end_user_token_seconds: int = 7 * 24 * 3600
    action_token_seconds: int = 3600
    public_base_url: str = "http://127.0.0.1:8000"
    kubeconfig: Path | None = Field(
        None, validation_alias=AliasChoices("COACHOPS_KUBECONFIG", "KUBECONFIG")
    )
    db_pool_size: int = 20
    tenant_cache_seconds: float = 5.0
    log_level: str = "INFO"

    @field_validator("kubeconfig", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

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
        if not self.jwt_keys_dir.is_dir() or not any(self.jwt_keys_dir.glob("*.pem")):
            problems.append(f"COACHOPS_JWT_KEYS_DIR ({self.jwt_keys_dir}) holds no *.pem key")
        if problems:
            raise SettingsError(f"refusing to start in {self.environment}: " + "; ".join(problems))
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        dsn = self.database_url.get_secret_value()
        for scheme in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
            if dsn.startswith(scheme):
                return "postgresql+asyncpg://" + dsn[len(scheme) :]
        raise SettingsError("COACHOPS_DATABASE_URL must be a postgresql:// DSN")
