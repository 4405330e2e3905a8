"""Mailpit on loopback: an SMTP server that keeps what it receives, and an HTTP API to read it.

The binary comes from scripts/build-mailpit.sh. ``stop()`` and ``start()`` may be called
again: a restarted Mailpit listens on the same ports and keeps its messages (its database
is a file in the work directory), which lets tests take the SMTP server away and bring it
back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from coachops_devstack.paths import built_bin, go_module_version
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess


def mailpit_bin() -> Path:
    version = go_module_version("mailpit", "github.com/axllent/mailpit")
    return built_bin(f"mailpit-{version}", "mailpit", "scripts/build-mailpit.sh")


@dataclass
class Mailpit:
    workdir: Path
    smtp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: ManagedProcess | None = None
    ready_seconds: float = 0.0

    @property
    def url(self) -> str:
        """The web UI and, under /api/v1, the HTTP API."""
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "mailpit",
            [
                str(mailpit_bin()),
                "--smtp",
                f"127.0.0.1:{self.smtp_port}",
                "--listen",
                f"127.0.0.1:{self.http_port}",
                "--database",
                str(self.workdir / "mailpit.db"),
                "--disable-version-check",
                "--smtp-disable-rdns",
                *self.extra_args,
            ],
            self.workdir / "mailpit.log",
        )
        self.process.start()

        async def ready() -> bool:
            async with httpx.AsyncClient(timeout=1) as client:
                response = await client.get(f"{self.url}/readyz")
                return response.status_code == 200

        self.ready_seconds = await self.process.wait_ready(ready, timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    # ------------------------------------------------------------ the HTTP API

    async def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Summaries of the messages received (newest first), optionally to one address."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            if to is None:
                response = await client.get("/api/v1/messages", params={"limit": 500})
            else:
                response = await client.get(
                    "/api/v1/search", params={"query": f'to:"{to}"', "limit": 500}
                )
            response.raise_for_status()
            messages: list[dict[str, Any]] = response.json()["messages"]
            return messages

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message in full: headers, ``Text`` and ``HTML`` bodies."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            response = await client.get(f"/api/v1/message/{message_id}")
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document
