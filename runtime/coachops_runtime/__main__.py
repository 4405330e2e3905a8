"""``python -m coachops_runtime --host 127.0.0.1 --port 8000``: serve the API with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from coachops_runtime.app import create_app
from coachops_runtime.kit.logging import configure_logging
from coachops_runtime.kit.settings import settings_or_exit


def main() -> None:
    parser = argparse.ArgumentParser(description="coachops runtime API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    settings = settings_or_exit("coachops-runtime")
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
