"""Settings of exports and erasures, from ``COACHOPS_PRIVACY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COACHOPS_PRIVACY_", extra="ignore")

    batch_rows: int = Field(
        1000, ge=1, le=100_000, description="rows one erasure transaction deletes at most"
    )
    batch_pause_seconds: float = Field(
        0.0,
        ge=0,
        le=60,
        description="pause between two erasure batches, to spread a large erasure's load",
    )
    link_seconds: int = Field(
        600, ge=10, le=86_400, description="how long a download link of an archive works"
    )
    archive_seconds: int = Field(
        24 * 3600, ge=60, description="how long a built archive is kept before it expires"
    )
    confirm_seconds: int = Field(
        900, ge=30, le=86_400, description="how long an end user's erasure confirmation works"
    )
    retry_seconds: float = Field(
        30.0, gt=0, description="wait before a job whose store was unavailable runs again"
    )
    max_attempts: int = Field(20, ge=1, description="runs of an export before it fails")
    timeout_seconds: float = Field(60.0, gt=0, description="per Chroma call")
