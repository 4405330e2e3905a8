"""Safety runs against a real Ollama (the embedding model) and the runtime's app on a real
PostgreSQL."""

from tests.ollama.conftest import ollama, ollama_stack
from tests.runtime.conftest import app, client, keys_dir, runtime_settings, tenants

__all__ = ["app", "client", "keys_dir", "ollama", "ollama_stack", "runtime_settings", "tenants"]
