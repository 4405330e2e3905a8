"""A throwaway Redis server on loopback; the default user has a password."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess


@dataclass
class Redis:
    workdir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: ManagedProcess | None = None
    ready_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"redis://default:{self.password}@127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: install the redis-server package")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.workdir}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                    f"requirepass {self.password}",
                ]
            )
            + "\n"
        )
        config.chmod(0o600)
        self.process = ManagedProcess("redis", [binary, str(config)], self.workdir / "redis.log")
        self.process.start()

        async def pong() -> bool:
            client = aioredis.Redis.from_url(self.url)
            try:
                return bool(await client.ping())
            finally:
                await client.aclose()

        self.ready_seconds = await self.process.wait_ready(pong, timeout=20)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
