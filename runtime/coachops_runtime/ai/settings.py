"""Settings of the reply pipeline, from ``COACHOPS_AI_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COACHOPS_AI_", extra="ignore")

    concurrency: int = Field(4, ge=1, description="replies one worker generates at once")
    lease_seconds: float = Field(
        300.0,
        gt=0,
        description="a claimed job is claimed again after this long (its worker died); "
        "longer than a generation can take",
    )
    generation_timeout_seconds: float = Field(
        120.0, gt=0, description="one generation attempt at most (below lease_seconds)"
    )
    provider_attempts: int = Field(
        3, ge=1, description="tries against the provider before the fallback text is sent"
    )
    provider_retry_seconds: float = Field(1.0, gt=0, description="first wait between tries")
    fallback_retry_seconds: float = Field(
        15.0, gt=0, description="after a fallback, the real answer is tried again this often"
    )
    max_attempts: int = Field(
        200, ge=1, description="then the job is marked failed (the fallback text stays)"
    )
    context_tokens: int = Field(
        2048, ge=256, description="the model's context window the prompt is budgeted to"
    )
    memory_turns: int = Field(6, ge=0, description="last messages given verbatim")
    summary_every: int = Field(
        10, ge=2, description="messages between two refreshes of the rolling summary"
    )
    retrieval_top_k: int = Field(4, ge=1, le=20)
    retrieval_max_distance: float = Field(0.75, gt=0, le=2)
    stream_max_events: int = Field(5000, ge=100, description="cap of one reply's Redis Stream")
    stream_ttl_seconds: int = Field(3600, ge=10, description="a reply's stream expires after")
    sse_ping_seconds: float = Field(15.0, gt=0)
