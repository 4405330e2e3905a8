"""Prompt assembly: the system prompt from its parts, each held to a token budget, then the
recent turns and the new message.

The window (``context_tokens``) less the reply's ``max_tokens`` is shared out: persona
25 %, the end user (profile, local time) 5 %, goals 10 %, memory summary 10 %, knowledge
25 %, the new message 15 %; what a part leaves unused, and the rest, goes to the recent
turns, newest kept first. Counts are ``tokens.estimate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coachops_runtime.ai import tokens
from coachops_runtime.ai.providers import ChatMessage

SHARES = {
    "persona": 0.25,
    "profile": 0.05,
    "goals": 0.10,
    "memory": 0.10,
    "knowledge": 0.25,
    "message": 0.15,
}


@dataclass(frozen=True)
class Persona:
    name: str
    instructions: str = ""
    tone: str = "warm"
    language: str = "en"


@dataclass(frozen=True)
class Source:
    """A retrieved passage as the prompt numbers it."""

    number: int
    source: str
    page: int | None
    section: str
    chunk_id: str
    text: str
    distance: float

    def citation(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "page": self.page,
            "section": self.section,
            "chunk_id": self.chunk_id,
            "snippet": tokens.fit(self.text, 60),
            "distance": round(self.distance, 4),
        }


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    text: str


@dataclass
class PromptParts:
    persona: Persona
    display_name: str
    time_zone: str
    goals: Sequence[str]
    summary: str
    sources: Sequence[Source]
    history: Sequence[Turn]
    message: str
    now: datetime


@dataclass
class Prompt:
    messages: list[ChatMessage]
    sources: list[Source]
    counts: dict[str, int] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What the job keeps for debugging: the system prompt and the per-part counts."""
        return {"system": self.messages[0].content, "tokens": self.counts}


def _local_time(now: datetime, zone: str) -> str:
    try:
        local = now.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local, zone = now, "UTC"
    return f"{local:%A %Y-%m-%d %H:%M} ({zone})"


def assemble(parts: PromptParts, *, context_tokens: int, max_tokens: int) -> Prompt:
    room = max(context_tokens - max_tokens, 64)
    budget = {name: int(room * share) for name, share in SHARES.items()}
    persona = parts.persona
    sections: dict[str, str] = {}
    sections["persona"] = tokens.fit(
        f"You are {persona.name}, a personal coach. Speak in a {persona.tone} tone and answer "
        f"in the language with the tag {persona.language}.\n{persona.instructions}".strip(),
        budget["persona"],
    )
    who = parts.display_name or "the end user"
    sections["profile"] = tokens.fit(
        f"You are talking with {who}. Their local time is "
        f"{_local_time(parts.now, parts.time_zone)}.",
        budget["profile"],
    )
    if parts.goals:
        sections["goals"] = tokens.fit(
            "Their active goals:\n" + "\n".join(f"- {goal}" for goal in parts.goals),
            budget["goals"],
        )
    if parts.summary:
        sections["memory"] = tokens.fit(
            f"Summary of the conversation so far:\n{parts.summary}", budget["memory"], keep="tail"
        )
    used_sources: list[Source] = []
    if parts.sources:
        lines = ["Knowledge from the program; cite a source as [n] when you use it:"]
        left = budget["knowledge"] - tokens.estimate(lines[0])
        for source in parts.sources:
            where = f", page {source.page}" if source.page is not None else ""
            line = f"[{source.number}] ({source.source}{where}) {source.text}"
            if tokens.estimate(line) > left:
                line = tokens.fit(line, left)
                if not line:
                    break
            lines.append(line)
            used_sources.append(source)
            left -= tokens.estimate(line)
            if left <= 8:
                break
        sections["knowledge"] = "\n".join(lines)
    message = tokens.fit(parts.message, budget["message"], keep="head")
    counts = {name: tokens.estimate(text) for name, text in sections.items()}
    counts["message"] = tokens.estimate(message)
    system = "\n\n".join(sections.values())
    left = room - sum(counts.values())
    history: list[ChatMessage] = []
    for turn in reversed(parts.history):  # newest first, until the budget is spent
        cost = tokens.estimate(turn.text)
        if cost > left:
            break
        history.append(ChatMessage("user" if turn.role == "user" else "assistant", turn.text))
        left -= cost
    history.reverse()
    counts["history"] = sum(tokens.estimate(m.content) for m in history)
    counts["history_turns"] = len(history)
    messages = [ChatMessage("system", system), *history, ChatMessage("user", message)]
    return Prompt(messages, used_sources, counts)
