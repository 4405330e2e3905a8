"""Prompt assembly and token budgets (pure functions, no services)."""

from __future__ import annotations

from datetime import UTC, datetime

from coachops_runtime.ai import tokens
from coachops_runtime.ai.prompt import Persona, PromptParts, Source, Turn, assemble

NOW = datetime(2026, 11, 29, 17, 30, tzinfo=UTC)


def _parts(**changes: object) -> PromptParts:
    parts = PromptParts(
        persona=Persona("Coach Juniper", "Be brief.", "calm", "de"),
        display_name="Robin",
        time_zone="Europe/Berlin",
        goals=["Sleep seven hours (by 2027-01-31)"],
        summary="Robin wakes at 4am.",
        sources=[
            Source(1, "guide.md", 3, "Evening", "c1", "Lights out at 22:15.", 0.2),
            Source(2, "notes.md", None, "", "c2", "Keep the room cool.", 0.4),
        ],
        history=[Turn("user", "Hi"), Turn("assistant", "Hello Robin")],
        message="What should I do tonight?",
        now=NOW,
    )
    for name, value in changes.items():
        setattr(parts, name, value)
    return parts


def test_every_part_is_in_the_system_prompt_in_order() -> None:
    prompt = assemble(_parts(), context_tokens=2048, max_tokens=256)
    system = prompt.messages[0]
    assert system.role == "system"
    text = system.content
    assert text.startswith("You are Coach Juniper, a personal coach. Speak in a calm tone")
    assert "language with the tag de" in text
    assert "Robin" in text
    assert "Sunday 2026-11-29 18:30 (Europe/Berlin)" in text  # the end user's local time
    assert "- Sleep seven hours (by 2027-01-31)" in text
    assert "Robin wakes at 4am." in text
    assert "[1] (guide.md, page 3) Lights out at 22:15." in text
    assert "[2] (notes.md) Keep the room cool." in text
    assert [(m.role, m.content) for m in prompt.messages[1:]] == [
        ("user", "Hi"),
        ("assistant", "Hello Robin"),
        ("user", "What should I do tonight?"),
    ]
    assert [s.number for s in prompt.sources] == [1, 2]
    record = prompt.record()
    assert record["tokens"]["history_turns"] == 2
    assert record["tokens"]["knowledge"] == tokens.estimate(text.split("\n\n")[-1])


def test_a_long_history_never_overflows_the_window_and_keeps_the_newest_turns() -> None:
    history = [
        Turn("user" if n % 2 else "assistant", f"turn {n} " + "word " * 80) for n in range(200)
    ]
    prompt = assemble(_parts(history=history), context_tokens=1024, max_tokens=200)
    used = sum(tokens.estimate(m.content) for m in prompt.messages)
    assert used <= 1024 - 200
    kept = [m.content.split()[1] for m in prompt.messages[1:-1]]
    assert kept, "some history fits"
    assert kept == [str(n) for n in range(200 - len(kept), 200)]  # the newest, in order


def test_oversized_parts_are_cut_to_their_budgets() -> None:
    huge = "lorem ipsum " * 5000
    prompt = assemble(
        _parts(
            persona=Persona("Coach", huge),
            summary=huge,
            goals=[huge],
            sources=[Source(1, "big.md", None, "", "c", huge, 0.1)],
            message=huge,
        ),
        context_tokens=2048,
        max_tokens=512,
    )
    room = 2048 - 512
    counts = prompt.counts
    assert counts["persona"] <= room * 0.25
    assert counts["goals"] <= room * 0.10
    assert counts["memory"] <= room * 0.10
    assert counts["knowledge"] <= room * 0.25
    assert counts["message"] <= room * 0.15
    assert sum(tokens.estimate(m.content) for m in prompt.messages) <= room


def test_an_unknown_time_zone_falls_back_to_utc() -> None:
    prompt = assemble(_parts(time_zone="Mars/Olympus"), context_tokens=2048, max_tokens=256)
    assert "17:30 (UTC)" in prompt.messages[0].content


def test_token_estimate_and_fit() -> None:
    assert tokens.estimate("") == 0
    assert tokens.estimate("abcd") == 1
    assert tokens.estimate("a b c d e") == 5  # a word is at least a token
    assert tokens.estimate("日本語のテキスト") == 6  # 24 UTF-8 bytes
    text = "one two three four five six seven eight nine ten " * 20
    head = tokens.fit(text, 10)
    assert tokens.estimate(head) <= 10
    assert head.startswith("one two")
    assert head.endswith("…")
    tail = tokens.fit(text, 10, keep="tail")
    assert tokens.estimate(tail) <= 10
    assert tail.startswith("…")
    assert tail.rstrip().endswith("ten")
    assert tokens.fit("short", 10) == "short"
    assert tokens.fit("anything", 0) == ""
