"""Operator settings, read from ``COACHOPS_OPERATOR_*`` environment variables."""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Where the stores are and how the operator behaves.

    The URLs carry credentials, so they are ``SecretStr``: they never print in logs,
    reprs or tracebacks.
    """

    model_config = SettingsConfigDict(env_prefix="COACHOPS_OPERATOR_", extra="ignore")

    database_url: SecretStr = Field(
        description="DSN of the schema owner role (LOGIN CREATEROLE, subject to forced RLS)."
    )
    redis_url: SecretStr = Field(description="Redis URL of a user allowed to manage ACLs.")
    chroma_url: str = Field(description="Base URL of the ChromaDB server.")
    runtime_image: str = Field(
        "ghcr.io/coachops/runtime:0.1.0", description="Default image of dedicated runtimes."
    )
    jwt_keys_dir: Path | None = Field(
        None,
        description=(
            "The platform's JWT key directory (the shared runtime's); dedicated runtimes get "
            "the public halves of its keys to verify tokens with."
        ),
    )
    jwt_issuer: str = Field("https://coachops.dev", description="The platform's token issuer.")
    database_host: str = Field(
        "", description="Host dedicated runtimes use for PostgreSQL (default: the DSN's host)."
    )
    redis_host: str = Field(
        "", description="Host dedicated runtimes use for Redis (default: the URL's host)."
    )
    runtime_chroma_url: str = Field(
        "", description="ChromaDB URL dedicated runtimes use (default: chroma_url)."
    )
    drift_interval: float = Field(
        10.0, gt=0, description="Seconds between drift checks of each Creator."
    )
    db_pool_size: int = Field(16, ge=1, description="Most PostgreSQL connections in the pool.")
    max_concurrent_reconciles: int = Field(
        24, ge=1, description="Creators reconciled at once; the rest wait their turn."
    )
    store_timeout: float = Field(5.0, gt=0, description="Timeout of one store call, seconds.")
    lease_name: str = Field("coachops-operator", description="Leader-election Lease name.")
    lease_namespace: str = Field(
        "coachops-system", description="Namespace of the leader-election Lease."
    )
    lease_seconds: float = Field(15.0, gt=1, description="Lease duration; takeover bound.")
    ollama_url: str = Field(
        "", description="Ollama server that holds every program's models (empty: none)."
    )
    model_registry: str = Field(
        "",
        description=(
            "Registry host (host[:port]) a model name without one is pulled from; empty: "
            "Ollama's default registry."
        ),
    )
    model_registry_insecure: bool = Field(
        False, description="Pull over plain HTTP (a loopback registry in development)."
    )
    default_chat_models: list[str] = Field(
        default_factory=lambda: ["coachops/tiny-chat:latest", "coachops/smollm2:135m"],
        description="Chat models allowed when a Creator's spec.models.chat is empty (JSON list).",
    )
    default_embedding_models: list[str] = Field(
        default_factory=lambda: ["coachops/minilm:latest"],
        description=(
            "Embedding models allowed when a Creator's spec.models.embedding is empty (JSON list)."
        ),
    )
    model_gc_grace: float = Field(
        86_400.0,
        ge=0,
        description="Seconds a model stays on Ollama after no program uses it; 0: never removed.",
    )
    model_pull_stall: float = Field(
        120.0,
        gt=0,
        description=(
            "Seconds a pull's progress may stay unchanged before the attempt counts as failed "
            "(PullFailed) and is retried with backoff."
        ),
    )
    channel_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("COACHOPS_OPERATOR_CHANNEL_KEY", "COACHOPS_CHANNEL_KEY"),
        description=(
            "Fernet key (url-safe base64 of 32 bytes) that encrypts channel credentials "
            "copied into PostgreSQL; the runtime reads the same key."
        ),
    )
    webhook_base_url: str = Field(
        "",
        description=(
            "Public base URL of the runtime; status.endpoints holds {base}/v1/hooks/"
            "{channel}/{program id} (only the path when empty)."
        ),
    )

    @field_validator("channel_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Fernet(value.get_secret_value())
            except ValueError:
                raise ValueError("must be url-safe base64 of 32 bytes (a Fernet key)") from None
        return value


@functools.cache
def load() -> OperatorSettings:
    """The settings, read from the environment and validated once per process."""
    return OperatorSettings()
