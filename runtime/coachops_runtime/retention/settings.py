"""Settings of the retention purge, from ``COACHOPS_RETENTION_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COACHOPS_RETENTION_", extra="ignore")

    interval_seconds: float = Field(
        3600.0, gt=0, description="how often the worker looks for messages past their limit"
    )
    batch_size: int = Field(
        1000, ge=1, le=100_000, description="rows deleted per transaction (one short lock each)"
    )
