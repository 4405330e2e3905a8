"""``python -m coachops_operator``: run the operator (kopf) with leader election.

Serves a liveness endpoint (``--liveness-port``, ``/healthz``) and Prometheus metrics
(``--metrics-port``, ``/metrics``) from the moment it starts, standby included. Without
``--standalone``, replicas elect a leader on a Lease and only the leader reconciles; a
leader that loses the Lease, or cannot renew it in time, exits at once with code 3
(``fence.py``). Settings that do not validate, or credentials the operator cannot use,
end it at start-up with code 2 and one line saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from typing import Any

# kopf imports the Kubernetes client libraries it finds installed (the runtime's
# dependencies bring two) only to offer logins this operator replaces with its own:
# ~50 MB of resident memory for nothing. Mark them absent before kopf looks.
for _unused in ("kubernetes", "kubernetes_asyncio", "pykube"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]

import kopf  # noqa: E402
import uvloop  # noqa: E402
from aiohttp import web  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from coachops_operator import credentials, kube, metrics, settings  # noqa: E402
from coachops_operator.leader import LeaseElector  # noqa: E402
from coachops_operator.validation import first_problem  # noqa: E402

log = logging.getLogger("coachops_operator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m coachops_operator", description=__doc__)
    parser.add_argument("--liveness-port", type=int, default=8080, help="0 disables")
    parser.add_argument("--metrics-port", type=int, default=9090, help="0 disables")
    parser.add_argument("--host", default="0.0.0.0", help="address the endpoints bind to")  # noqa: S104
    parser.add_argument(
        "--standalone", action="store_true", help="no leader election (a single replica)"
    )
    parser.add_argument(
        "--identity",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="this replica's name in the Lease",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


class Health:
    def __init__(self) -> None:
        self.leader = False
        self.kopf_task: asyncio.Task[None] | None = None

    async def healthz(self, _request: web.Request) -> web.Response:
        if self.kopf_task is not None and self.kopf_task.done():
            return web.json_response({"status": "stopped"}, status=500)
        return web.json_response({"status": "ok", "role": "leader" if self.leader else "standby"})


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(metrics.REGISTRY),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


async def _serve(host: str, port: int, path: str, handler: object) -> web.AppRunner | None:
    if not port:
        return None
    app = web.Application()
    app.router.add_get(path, handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        # An endpoint that cannot bind must not keep the operator from reconciling.
        log.error("cannot serve %s on %s:%d: %s", path, host, port, error.strerror)
        await runner.cleanup()
        return None
    return runner


async def run(args: argparse.Namespace) -> int:
    try:
        config = settings.load()  # fail fast on missing or invalid settings
        # Credentials the operator cannot use (an unsupported kubeconfig user, an exec
        # plugin that fails) end it here, not in a retry loop inside kopf.
        login = credentials.load()
        await login.headers()  # runs an exec plugin once
    except ValidationError as error:
        field, _, problem = first_problem(error).partition(": ")
        log.error("invalid setting COACHOPS_OPERATOR_%s: %s", field.upper(), problem)
        return 2
    except kopf.LoginError as error:
        log.error("cannot log in to the Kubernetes API: %s", error)
        return 2
    from coachops_operator import handlers  # noqa: F401 - registers the handlers with kopf

    api = kube.KubeClient(login)
    health = Health()
    runners = [
        await _serve(args.host, args.liveness_port, "/healthz", health.healthz),
        await _serve(args.host, args.metrics_port, "/metrics", _metrics),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    elector: LeaseElector | None = None
    code = 0
    try:
        if not args.standalone:
            elector = LeaseElector(
                api,
                name=config.lease_name,
                namespace=config.lease_namespace,
                identity=args.identity,
                duration=config.lease_seconds,
            )
            acquiring = asyncio.create_task(elector.acquire())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                acquiring.cancel()
                return 0
            stopping.cancel()
        health.leader = True
        metrics.LEADER.set(1)
        stop_flag: asyncio.Event = asyncio.Event()
        ready_flag: asyncio.Event = asyncio.Event()
        kopf_task = asyncio.create_task(
            kopf.operator(
                clusterwide=True, standalone=True, stop_flag=stop_flag, ready_flag=ready_flag
            )
        )
        health.kopf_task = kopf_task
        signals = asyncio.create_task(_take_back_signals(ready_flag, stop))
        waiters: set[asyncio.Task[Any]] = {kopf_task, asyncio.create_task(stop.wait())}
        keeper = asyncio.create_task(elector.keep()) if elector else None
        if keeper is not None:
            waiters.add(keeper)
        # The keeper renews the Lease while kopf works and while it stops; losing the Lease
        # ends the process from inside the keeper.
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if keeper is not None and keeper in done:
            log.error("the Lease keeper ended: %r; stopping", keeper.exception())
            code = 1
        elif kopf_task in done and not stop.is_set():
            log.error(
                "kopf stopped by itself: %r",
                None if kopf_task.cancelled() else kopf_task.exception(),
            )
            code = 1
        stop_flag.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(kopf_task, timeout=30)
        signals.cancel()
        if keeper is not None:
            keeper.cancel()
    finally:
        metrics.LEADER.set(0)
        if elector is not None:  # a lost Lease never gets here (fence.stop exits)
            await elector.release()
        await api.close()
        for runner in runners:
            if runner is not None:
                await runner.cleanup()
    return code


async def _take_back_signals(ready: asyncio.Event, stop: asyncio.Event) -> None:
    """kopf sets SIGINT and SIGTERM handlers of its own as it starts, replacing the
    operator's: a signal then stopped kopf but not the operator's ``stop``, kopf waited 5 s
    for its ``stop_flag`` waiter, and the operator exited 1 as if kopf had stopped by
    itself. Once kopf is ready, the operator's handlers are set again: a signal sets
    ``stop``, the operator raises kopf's ``stop_flag`` and kopf stops at once."""
    await ready.wait()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def tune_garbage_collector() -> None:
    """Collect less often: with the default thresholds (700, 10, 10), a run that made 1,000
    Creators Ready in 66 s did ~1,450 young and 12 full collections, 7.2 s of CPU (~20 % of
    the operator's), as kopf's per-object state and the indexes kept the heap growing. With
    these, the same run did 13 young collections (0.8 s) and no full one. What was imported
    until now lives as long as the process: freeze it out of every scan."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tune_garbage_collector()
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if not args.verbose:
        # kopf logs every handler and timer success per object at INFO: at 1,000 tenants
        # that is ~100 lines a second of nothing. Warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # uvloop: the operator is mostly sockets (watches, API calls, the stores); its C event
    # loop and transports cost less CPU per call than asyncio's (bench/creators_bench.py).
    sys.exit(uvloop.run(run(args)))


if __name__ == "__main__":
    main()
