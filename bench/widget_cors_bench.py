"""What the widget's CORS layer costs a ``/v1/me`` request, in process.

    .venv/bin/python bench/widget_cors_bench.py [--requests 50000]

The middleware (``coachops_runtime.widget.cors.WidgetCors``) runs in front of a trivial
inner app, on one request without ``Origin`` and one from a listed origin whose token is
already memoised and whose program's origins are cached: the steady state of a page
talking to the runtime. The same inner app called directly is the baseline; the
difference is the layer's CPU per request. Cache misses add one short query under the
tenant (not measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coachops_runtime.auth.keys import KeyRing, generate_key_file
from coachops_runtime.auth.service import END_USER_AUDIENCE
from coachops_runtime.widget.cors import WidgetCors

ORIGIN = b"https://coach.example"


async def inner(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def discard(message: Message) -> None:
    return None


async def nothing() -> Message:
    return {"type": "http.request"}


async def per_request(app: ASGIApp, scope: Scope, count: int) -> float:
    for _ in range(1000):
        await app(scope, nothing, discard)
    started = time.perf_counter()
    for _ in range(count):
        await app(scope, nothing, discard)
    return (time.perf_counter() - started) / count * 1e6


async def main(count: int) -> None:
    directory = Path(tempfile.mkdtemp())
    generate_key_file(directory, "2026-01-01")
    keys = KeyRing.open(directory, issuer="bench", development=True)
    now = int(time.time())
    program = uuid.uuid4()
    token = keys.sign(
        {
            "iss": "bench",
            "aud": END_USER_AUDIENCE,
            "typ": "end_user",
            "sub": str(uuid.uuid4()),
            "tid": str(uuid.uuid4()),
            "pid": str(program),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
    )
    runtime = SimpleNamespace(keys=keys, settings=SimpleNamespace(tenant_cache_seconds=3600))
    middleware = WidgetCors(inner)
    middleware._origins[program] = (time.monotonic() + 3600, frozenset({ORIGIN.decode()}))
    headers = [
        (b"host", b"runtime.example"),
        (b"authorization", b"Bearer " + token.encode()),
        (b"accept", b"application/json"),
        (b"user-agent", b"bench"),
    ]
    for label, extra in (("no Origin", []), ("listed Origin", [(b"origin", ORIGIN)])):
        scope: Scope = {
            "type": "http",
            "path": "/v1/me/messages",
            "method": "GET",
            "scheme": "https",
            "headers": headers + extra,
            "app": SimpleNamespace(state=SimpleNamespace(runtime=runtime)),
        }
        layered = await per_request(middleware, scope, count)
        bare = await per_request(inner, scope, count)
        print(
            f"{label:14} {layered:6.2f} us through the layer, {bare:5.2f} us bare: "
            f"+{layered - bare:.2f} us per request"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    asyncio.run(main(parser.parse_args().requests))
