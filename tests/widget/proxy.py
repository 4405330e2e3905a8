"""A loopback TCP proxy in front of the runtime that can drop a reply stream mid-event.

The browser reaches the runtime through it. Reply streams reach the browser one event at a
time, ``pace`` seconds apart, as over a slow link: the widget's rendering of each piece is
then seen whatever the speed of the model. ``cut_next_stream(n)`` arms it: the next
``GET /v1/me/messages/{id}/reply`` is relayed until its n-th event, then a few bytes of
the next one, and then both sockets are closed, as a dropped mobile connection would.
Every reply-stream request head is recorded, so a test can see the ``Last-Event-ID`` the
client reconnected with, and the ids of the events relayed before the cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

from coachops_devstack.ports import free_port

STREAM_REQUEST = re.compile(rb"^GET /v1/me/messages/\d+/reply ", re.MULTILINE)
EVENT_START = b"\nid: "
EVENT_ID = re.compile(rb"\nid: ([^\r\n]+)")


@dataclass
class _Cut:
    after_events: int
    relayed: bytearray = field(default_factory=bytearray)
    body_from: int | None = None  # where the response's headers end


@dataclass
class StreamCutter:
    target_port: int
    pace: float = 0.0
    port: int = 0
    stream_heads: list[bytes] = field(default_factory=list)
    cut_ids: list[str] = field(default_factory=list)  # event ids relayed before the cut
    stream_opened: asyncio.Event = field(default_factory=asyncio.Event)
    _armed: int | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> str:
        self.port = free_port()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def cut_next_stream(self, after_events: int) -> None:
        self._armed = after_events

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        state: dict[str, _Cut | None] = {"cut": None}
        streaming = asyncio.Event()  # this connection carries a reply stream

        async def to_server() -> None:
            while chunk := await reader.read(65536):
                if STREAM_REQUEST.search(chunk):
                    self.stream_heads.append(chunk.split(b"\r\n\r\n", 1)[0])
                    self.stream_opened.set()
                    streaming.set()
                    if self._armed is not None:
                        state["cut"] = _Cut(self._armed)
                        self._armed = None
                upstream_writer.write(chunk)
                await upstream_writer.drain()

        async def to_client() -> None:
            while chunk := await upstream_reader.read(65536):
                cut = state["cut"]
                relay, reached = (chunk, False) if cut is None else self._relay(cut, chunk)
                if streaming.is_set():
                    await self._paced(relay, writer)
                else:
                    writer.write(relay)
                await writer.drain()
                if reached:
                    return  # the finally below closes both sides mid-event

        pumps = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for stream in (writer, upstream_writer):
                with contextlib.suppress(Exception):
                    stream.close()
            self._tasks.discard(task)

    async def _paced(self, data: bytes, writer: asyncio.StreamWriter) -> None:
        """``data`` in pieces that each start an event, ``pace`` seconds apart."""
        start = 0
        while (next_event := data.find(EVENT_START, start + 1)) > 0:
            writer.write(data[start:next_event])
            await writer.drain()
            await asyncio.sleep(self.pace)
            start = next_event
        writer.write(data[start:])

    def _relay(self, cut: _Cut, chunk: bytes) -> tuple[bytes, bool]:
        """What of ``chunk`` to relay, and whether the cut is reached with it."""
        start = len(cut.relayed)
        cut.relayed += chunk
        if cut.body_from is None:
            end = cut.relayed.find(b"\r\n\r\n")
            if end < 0:
                return chunk, False
            cut.body_from = end + 4
        position = cut.body_from
        for _ in range(cut.after_events + 1):
            position = cut.relayed.find(EVENT_START, position)
            if position < 0:
                return chunk, False
            position += len(EVENT_START)
        # Part of the next event (its id line, unfinished) goes out, then the connection ends.
        stop = position + 4
        if stop > len(cut.relayed):
            return chunk, False
        body = bytes(cut.relayed[cut.body_from : position - len(EVENT_START)])
        self.cut_ids = [match.decode() for match in EVENT_ID.findall(b"\n" + body)]
        return bytes(cut.relayed[start:stop]), True
