"""Settings of the proactive engine, from ``COACHOPS_PROACTIVE_*`` environment variables."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from coachops_runtime.proactive.clock import Clock, ScaledClock, SystemClock


class ProactiveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COACHOPS_PROACTIVE_", extra="ignore")

    batch_size: int = Field(
        50, ge=1, le=1000, description="schedules one transaction claims and handles"
    )
    concurrency: int = Field(2, ge=1, le=64, description="batches one scheduler handles at once")
    generation_timeout_seconds: float = Field(
        20.0, gt=0, description="an AI-written message at most; then the template text is sent"
    )
    stale_after_hours: float = Field(
        12.0,
        gt=0,
        description="an occurrence due longer ago than this (the scheduler was not running) "
        "is skipped, recorded as 'stale', instead of sent late",
    )
    nudge_recheck_hours: float = Field(
        6.0, gt=0, description="after a nudge, how often the silence is looked at again"
    )
    clock_start: datetime | None = Field(
        None, description="tests and benchmarks: the simulated time at clock_epoch"
    )
    clock_epoch: float = Field(0.0, description="tests and benchmarks: a Unix time")
    clock_speed: float = Field(1.0, gt=0, description="simulated seconds per real second")

    def clock(self) -> Clock:
        if self.clock_start is None:
            return SystemClock()
        return ScaledClock(self.clock_start, self.clock_epoch, self.clock_speed)
