"""Operator settings, read from ``COACHOPS_OPERATOR_*`` environment variables."""

from __future__ import annotations

import functools

from pydantic import Field, SecretStr
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
    database_host: str = Field(
        "", description="Host dedicated runtimes use for PostgreSQL (default: the DSN's host)."
    )
    redis_host: str = Field(
        "", description="Host dedicated runtimes use for Redis (default: the URL's host)."
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


@functools.cache
def load() -> OperatorSettings:
    """The settings, read from the environment and validated once per process."""
    return OperatorSettings()
