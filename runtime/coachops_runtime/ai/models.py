"""A program's ``spec.model`` as the pipeline uses it, and the providers it names.

The provider's API key (``spec.model.apiKeySecretRef``) arrives as the operator copied it,
encrypted (``provider_credentials``); it is decrypted here, with the platform's credentials
key, only to build the provider's client, and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from coachops_crds.models import ModelSpec
from coachops_runtime.ai.providers import ChatProvider, OllamaProvider, OpenAIProvider
from coachops_runtime.ai.settings import AiSettings
from coachops_runtime.channels.credentials import CredentialsUnreadableError, decrypt
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.kit.settings import Settings
from coachops_runtime.knowledge.embedding import ollama_name

log = logging.getLogger("coachops.worker.ai")


@dataclass(frozen=True)
class ProgramModel:
    provider: str
    chat: str
    base_url: str
    temperature: float
    max_tokens: int
    fallback_text: str
    # The API key, encrypted as in provider_credentials; None: the program names no Secret.
    provider_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], provider_key: bytes | None = None) -> ProgramModel:
        """From the program row's spec (camelCase, as the operator stores it); a
        ``spec.model`` that does not validate falls back to the CRD's defaults, so the end
        user still gets an answer (or the fallback text)."""
        try:
            model = ModelSpec.model_validate(spec.get("model") or {})
        except ValidationError:
            log.warning("spec.model does not validate; defaults apply")
            model = ModelSpec()
        return cls(
            provider=model.provider,
            chat=model.chat,
            base_url=model.base_url,
            temperature=model.temperature,
            max_tokens=model.max_tokens,
            fallback_text=model.fallback_text,
            provider_key=provider_key,
        )


class Providers:
    """One client per provider, base URL and API key, shared by every job of the worker."""

    def __init__(self, settings: Settings, ai: AiSettings) -> None:
        self.settings = settings
        self.ai = ai
        self.credentials_key = ChannelSettings().key
        self._clients: dict[tuple[str, str, bytes | None], ChatProvider] = {}

    def model_name(self, model: ProgramModel) -> str:
        """The name the provider knows the model by: Ollama holds a model from the
        platform's registry as registry/name (as the operator pulls it)."""
        if model.provider == "ollama" and not model.base_url:
            return ollama_name(model.chat, self.settings.model_registry)
        return model.chat

    def for_model(self, model: ProgramModel) -> ChatProvider:
        key = (model.provider, model.base_url, model.provider_key)
        client = self._clients.get(key)
        if client is None:
            timeout = self.ai.generation_timeout_seconds
            if model.provider == "openai":
                client = OpenAIProvider(model.base_url, self._api_key(model), timeout=timeout)
            else:
                client = OllamaProvider(model.base_url or self.settings.ollama_url, timeout=timeout)
            self._clients[key] = client
        return client

    def _api_key(self, model: ProgramModel) -> str:
        """The decrypted key, or "" (the provider then refuses, and the fallback text
        goes out) when it cannot be read."""
        if model.provider_key is None:
            return ""
        if self.credentials_key is None:
            log.warning("a program's API key is not readable: COACHOPS_CHANNEL_KEY is unset")
            return ""
        try:
            return decrypt(self.credentials_key, model.provider_key)["api-key"]
        except (CredentialsUnreadableError, KeyError):
            log.warning("a program's API key does not decrypt with COACHOPS_CHANNEL_KEY")
            return ""

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
