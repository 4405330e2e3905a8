"""``python -m coachops_devstack.relay LISTEN=CONNECT ...``: copy TCP streams between
network namespaces through Unix sockets.

A Unix socket is a file, so it reaches across network namespaces where no IP route does.
The node's pods live in a network namespace of the harness; one relay inside it listens on
the node's address and connects to a Unix socket, and one in the host's namespace listens on
that socket and connects to a loopback port (and the reverse for reaching a Service). No
byte travels over an IP address outside loopback and the harness's namespace.

Each argument is ``tcp:HOST:PORT=unix:PATH`` or ``unix:PATH=tcp:HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _connect(target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, _, rest = target.partition(":")
    if kind == "unix":
        return await asyncio.open_unix_connection(rest)
    host, _, port = rest.rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def _serve(listen: str, target: str) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await _connect(target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    kind, _, rest = listen.partition(":")
    if kind == "unix":
        Path(rest).unlink(missing_ok=True)
        return await asyncio.start_unix_server(handle, rest)
    host, _, port = rest.rpartition(":")
    return await asyncio.start_server(handle, host, int(port), reuse_address=True)


async def main(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        listen, _, target = pair.partition("=")
        servers.append(await _serve(listen, target))
    print("relay ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
