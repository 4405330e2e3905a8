"""The runtime's fixtures: an app on a fresh migrated database and tenants to call it as."""

from tests.runtime.conftest import app, client, keys_dir, runtime_settings, tenants

__all__ = ["app", "client", "keys_dir", "runtime_settings", "tenants"]
