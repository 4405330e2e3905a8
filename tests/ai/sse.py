"""A small Server-Sent Events parser for the tests (one event per blank-line block)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: str


def parse(text: str) -> list[Event]:
    events: list[Event] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event = _event(block.split("\n"))
        if event is not None:
            events.append(event)
    return events


async def iterate(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    block: list[str] = []
    async for line in lines:
        if line.strip("\r") == "":
            event = _event(block)
            block = []
            if event is not None:
                yield event
        else:
            block.append(line.rstrip("\r"))


def _event(lines: list[str]) -> Event | None:
    fields: dict[str, list[str]] = {}
    for line in lines:
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
    if "event" not in fields and "data" not in fields:
        return None
    return Event(
        id=(fields.get("id") or [""])[-1],
        event=(fields.get("event") or ["message"])[-1],
        data="\n".join(fields.get("data", [])),
    )
