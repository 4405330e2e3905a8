"""Settings of the channels, from ``COACHOPS_CHANNEL_*`` environment variables.

``COACHOPS_CHANNEL_KEY`` is the Fernet key the operator encrypts channel credentials with
(docs/operator.md); the runtime decrypts with the same variable.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChannelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COACHOPS_CHANNEL_", extra="ignore")

    key: SecretStr | None = Field(
        None, description="Fernet key of channel_credentials; unset: no channel but web works"
    )
    webhook_base_url: str = Field(
        "",
        description="public base URL of the runtime as providers call it (Twilio signs the "
        "full URL); empty: the URL of the request as received",
    )
    telegram_api: str = "https://api.telegram.org"
    slack_api: str = "https://slack.com"
    twilio_api: str = "https://api.twilio.com"
    whatsapp_api: str = "https://graph.facebook.com/v21.0"
    send_timeout_seconds: float = Field(10.0, gt=0, description="one provider call at most")
    max_attempts: int = Field(8, ge=1, description="then the delivery is dead-lettered")
    retry_base_seconds: float = Field(2.0, gt=0, description="first backoff after a failure")
    retry_max_seconds: float = Field(600.0, gt=0, description="longest backoff")
    concurrency: int = Field(8, ge=1, description="deliveries one worker sends at once")
