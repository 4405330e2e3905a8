"""A ChromaDB server (the PyPI package's ``chroma run``) on loopback."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess


@dataclass
class Chroma:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None
    ready_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        chroma = Path(sys.executable).parent / "chroma"
        self.process = ManagedProcess(
            "chroma",
            [
                str(chroma),
                "run",
                "--path",
                str(self.workdir / "data"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            self.workdir / "chroma.log",
            env={"ANONYMIZED_TELEMETRY": "False"},
        )
        self.process.start()

        async def heartbeat() -> bool:
            async with httpx.AsyncClient(timeout=1) as client:
                response = await client.get(f"{self.url}/api/v2/heartbeat")
                return response.status_code == 200

        self.ready_seconds = await self.process.wait_ready(heartbeat, timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
