"""``python -m coachops_devstack up``: the local stack in the foreground (``make up``).

Starts the control plane, PostgreSQL, Redis, ChromaDB, Mailpit (and Ollama when no
OLLAMA_HOST is given), applies the CRDs, runs the operator, the runtime and the e-mail
worker with their logs interleaved on this terminal, applies the sample tenant and prints
how to use it. Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import sys
from pathlib import Path

from coachops_devstack.localstack import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m coachops_devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the local stack in the foreground")
    up.add_argument("--port", type=int, default=8000, help="runtime API port (default 8000)")
    up.add_argument(
        "--once",
        action="store_true",
        help="exit after the stack and the sample tenant are up (used by the tests)",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where logs and kubeconfigs go (default: a new temporary directory)",
    )
    up.add_argument(
        "--node",
        action="store_true",
        help=(
            "also run a node (containerd, kubelet; docs/node.md) so dedicated runtimes run "
            "as pods; the first run builds it and the image (minutes), later ones take ~5 s"
        ),
    )
    args = parser.parse_args()
    if importlib.util.find_spec("coachops_runtime") is None:
        sys.exit("the project is not installed: run `make up` (or scripts/bootstrap.sh)")
    asyncio.run(_up(args.port, args.once, args.state_dir, args.node))


async def _up(port: int, once: bool, state_dir: Path | None, node: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    local = LocalStack(
        api_port=port, state_dir=state_dir, ollama_host=os.environ.get("OLLAMA_HOST"), node=node
    )
    try:
        await local.start()
        print(local.instructions(), flush=True)
        try:
            print(await asyncio.to_thread(local.wait_for_samples), flush=True)
        except RuntimeError as error:
            if once:
                raise
            print(f"the sample tenant is not Ready yet: {error}", flush=True)
        if not once:
            await stop.wait()
            print("\nstopping the local stack ...", flush=True)
    finally:
        await local.stop()


if __name__ == "__main__":
    main()
