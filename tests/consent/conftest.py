"""The channels' fixtures: the runtime with channel settings pointing at the provider
stand-ins, programs wired to channels, and senders that sign as the providers do."""

from tests.channels.conftest import (
    ai_settings,
    app,
    channel_settings,
    channeling,
    client,
    coaching,
    keys_dir,
    model_registry,
    ollama,
    ollama_client,
    ollama_stack,
    outbox,
    pulled_chat_model,
    replies,
    runtime_settings,
    standins,
    tenants,
)

__all__ = [
    "ai_settings",
    "app",
    "channel_settings",
    "channeling",
    "client",
    "coaching",
    "keys_dir",
    "model_registry",
    "ollama",
    "ollama_client",
    "ollama_stack",
    "outbox",
    "pulled_chat_model",
    "replies",
    "runtime_settings",
    "standins",
    "tenants",
]
