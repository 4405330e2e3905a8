"""Prometheus on loopback: scrapes the local stack's operator, runtime and worker every few
seconds and evaluates the chart's alerts (charts/coachops/dashboards/alerts.yaml), the
rules the PrometheusRule of a cluster install carries.

The binaries come from scripts/build-prometheus.sh (without the web UI's assets: the HTTP
API under /api/v1 is what there is to use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from coachops_devstack.paths import REPO_ROOT, built_bin, go_module_version
from coachops_devstack.ports import free_port
from coachops_devstack.process import ManagedProcess

ALERTS = REPO_ROOT / "charts" / "coachops" / "dashboards" / "alerts.yaml"


def prometheus_bin(name: str = "prometheus") -> Path:
    """``prometheus`` or ``promtool``."""
    version = go_module_version("prometheus", "github.com/prometheus/prometheus")
    return built_bin(f"prometheus-{version}", name, "scripts/build-prometheus.sh")


@dataclass
class Prometheus:
    """``targets`` maps a job name to the ``host:port`` serving its ``/metrics``."""

    workdir: Path
    targets: dict[str, str]
    interval_seconds: int = 5
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        interval = f"{self.interval_seconds}s"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in self.targets.items()
            ],
        }

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.process = ManagedProcess(
            "prometheus",
            [
                str(prometheus_bin()),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            self.workdir / "prometheus.log",
        )
        self.process.start()

        async def ready() -> bool:
            async with httpx.AsyncClient(timeout=1) as client:
                return (await client.get(f"{self.url}/-/ready")).status_code == 200

        await self.process.wait_ready(ready, timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
