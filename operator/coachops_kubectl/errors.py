"""The one error the plugin reports: a sentence for the user and an exit code."""

from __future__ import annotations


class PluginError(Exception):
    """Something the user can act on; printed as one line on stderr, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
