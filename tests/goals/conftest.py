"""Goals run against the runtime's app on a real PostgreSQL (tests/runtime's fixtures)."""

from tests.runtime.conftest import app, client, keys_dir, runtime_settings, tenants

__all__ = ["app", "client", "keys_dir", "runtime_settings", "tenants"]
