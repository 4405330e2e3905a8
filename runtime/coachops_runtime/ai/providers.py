"""Chat providers behind one small interface: stream the reply's text, then its usage.

* ``OllamaProvider``: the official ``ollama`` async client (``/api/chat``);
* ``OpenAIProvider``: the official ``openai`` client against any OpenAI-compatible base URL
  (``/v1/chat/completions``), with the API key from the program's Secret.

Both raise ``ProviderError`` for anything that is the provider's fault (unreachable,
timeout, 5xx, missing model); the pipeline retries and then sends the fallback text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import httpx
import ollama
import openai

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatMessage]
    temperature: float
    max_tokens: int


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ProviderError(Exception):
    """The provider could not answer; worth retrying later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChatProvider(Protocol):
    name: str

    def stream(self, request: ChatRequest, usage: Usage) -> AsyncIterator[str]:
        """Text pieces as they are generated; ``usage`` is filled in at the end."""
        ...

    async def close(self) -> None: ...


def _messages(request: ChatRequest) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in request.messages]


class OllamaProvider:
    name = "ollama"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.client = ollama.AsyncClient(host=url, timeout=timeout, trust_env=False)

    async def stream(self, request: ChatRequest, usage: Usage) -> AsyncIterator[str]:
        options = {"temperature": request.temperature, "num_predict": request.max_tokens}
        try:
            parts: Any = await self.client.chat(
                model=request.model, messages=_messages(request), stream=True, options=options
            )
            async for part in parts:
                if part.message.content:
                    yield part.message.content
                if part.done:
                    usage.prompt_tokens = part.prompt_eval_count or 0
                    usage.completion_tokens = part.eval_count or 0
        except ollama.ResponseError as error:
            raise ProviderError(f"Ollama answered {error.status_code}: {error.error}") from error
        except (httpx.HTTPError, ConnectionError, TimeoutError) as error:
            raise ProviderError(f"Ollama unreachable: {type(error).__name__}") from error

    async def close(self) -> None:
        # The package leaves AsyncClient.close unannotated.
        close = cast(Callable[[], Awaitable[None]], self.client.close)
        await close()


class OpenAIProvider:
    name = "openai"

    def __init__(self, base_url: str, api_key: str, *, timeout: float) -> None:
        # The client's own retries are off: the pipeline retries, then falls back.
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=0
        )

    async def stream(self, request: ChatRequest, usage: Usage) -> AsyncIterator[str]:
        try:
            chunks: Any = await self.client.chat.completions.create(
                model=request.model,
                messages=cast(Any, _messages(request)),
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in chunks:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
                if chunk.usage is not None:
                    usage.prompt_tokens = chunk.usage.prompt_tokens
                    usage.completion_tokens = chunk.usage.completion_tokens
        except openai.APIStatusError as error:
            raise ProviderError(f"provider answered {error.status_code}") from error
        except (openai.APIError, httpx.HTTPError) as error:
            raise ProviderError(f"provider unreachable: {type(error).__name__}") from error

    async def close(self) -> None:
        await self.client.close()
