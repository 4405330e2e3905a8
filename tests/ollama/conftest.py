"""Session fixtures for a real Ollama server and a loopback model registry.

* ``ollama_stack``: the whole ``OllamaStack`` (coachops_devstack.ollama), started once for
  every package that imports it;
* ``ollama``: Ollama's base URL; the embedding model is already there and loaded;
* ``model_registry``: the registry, holding the chat model, which Ollama does not have
  until a test pulls it (``pulled_chat_model`` does that for tests that only need it);
* ``instruct_model``: SmolLM2-135M-Instruct, in the registry and already in Ollama;
* ``ollama_fault``: the fault switch; a test may stop or kill Ollama through it, and the
  fixture brings Ollama back afterwards so later tests find it running.

The first run on a machine builds Ollama from its Go module (scripts/build-ollama.sh),
which takes a long time on two cores; later runs reuse the binary and the models.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import pytest
from ollama import AsyncClient

from coachops_devstack.ollama import OllamaStack, start_ollama_stack

_stacks: list[OllamaStack] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for stack in _stacks:
        terminalreporter.write_sep("-", "ollama stack")
        terminalreporter.write_line(stack.timings.table())


# Packages import this fixture into their own conftest, and pytest keeps one instance per
# import: the first starts the stack, every other reuses it, the last to finish stops it.
_users: list[object] = []


@pytest.fixture(scope="session")
async def ollama_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OllamaStack]:
    if not _users:
        _stacks.append(
            await start_ollama_stack(tmp_path_factory.mktemp("ollama"), keep_workdir=True)
        )
    stack = _stacks[-1]
    user = object()
    _users.append(user)
    try:
        yield stack
    finally:
        _users.remove(user)
        if not _users:
            stack.stop()


@pytest.fixture(scope="session")
def ollama(ollama_stack: OllamaStack) -> str:
    """Ollama's base URL (``http://127.0.0.1:PORT``), holding the embedding model."""
    return ollama_stack.base_url


@dataclass(frozen=True)
class ModelRegistry:
    """The loopback registry, as tests see it."""

    address: str  # 127.0.0.1:PORT, the host part of model names
    url: str
    chat_model: str  # pushed here, not pulled into Ollama by the harness
    missing_model: str  # a well-formed name the registry does not have


@pytest.fixture(scope="session")
def model_registry(ollama_stack: OllamaStack) -> ModelRegistry:
    return ModelRegistry(
        address=ollama_stack.registry_address,
        url=ollama_stack.registry_url,
        chat_model=ollama_stack.chat_model,
        missing_model=ollama_stack.missing_model,
    )


async def aclose(client: AsyncClient) -> None:
    """``AsyncClient.close``, which the ollama package leaves unannotated."""
    close = cast(Callable[[], Awaitable[None]], client.close)
    await close()


@pytest.fixture
async def ollama_client(ollama: str) -> AsyncIterator[AsyncClient]:
    """The official ``ollama`` client, pointed at the stack's server."""
    c = AsyncClient(host=ollama, timeout=120)
    try:
        yield c
    finally:
        await aclose(c)


@pytest.fixture
async def pulled_chat_model(
    ollama_stack: OllamaStack, model_registry: ModelRegistry, ollama_client: AsyncClient
) -> str:
    """The chat model, pulled from the registry when Ollama does not have it yet."""
    await ollama_stack.start_ollama()  # a fault test may have left it stopped
    names = {m.model for m in (await ollama_client.list()).models}
    if model_registry.chat_model not in names:
        await ollama_client.pull(model_registry.chat_model, insecure=True)
    return model_registry.chat_model


@pytest.fixture
async def instruct_model(ollama_stack: OllamaStack) -> str:
    """SmolLM2's registry name, which Ollama holds (with its template and system prompt)."""
    await ollama_stack.start_ollama()  # a fault test may have left it stopped
    return ollama_stack.instruct_model


@dataclass
class OllamaFault:
    """Make Ollama unavailable and bring it back; pulling ``missing_model`` fails."""

    stack: OllamaStack

    def stop(self) -> None:
        self.stack.stop_ollama()

    def kill(self) -> None:
        self.stack.kill_ollama()

    async def start(self) -> float:
        return await self.stack.start_ollama()

    @property
    def missing_model(self) -> str:
        return self.stack.missing_model


@pytest.fixture
async def ollama_fault(ollama_stack: OllamaStack) -> AsyncIterator[OllamaFault]:
    try:
        yield OllamaFault(ollama_stack)
    finally:
        await ollama_stack.start_ollama()
