"""The pattern layer on its own: core phrases in eight languages, and what it lets pass."""

from __future__ import annotations

import pytest

from coachops_runtime.ai.safety.normalize import normalize
from coachops_runtime.ai.safety.patterns import match
from coachops_runtime.ai.safety.topics import blocked_topic

CRISES = [
    ("I want to kill myself", "self_harm"),
    ("I\u2019m thinking about ending my life", "self_harm"),  # typographic apostrophe
    ("I don't want to live anymore", "self_harm"),
    ("Ich will nicht mehr leben", "self_harm"),
    ("Je veux me suicider", "self_harm"),
    ("Quiero morirme", "self_harm"),
    ("Não quero mais viver", "self_harm"),
    ("Voglio morire", "self_harm"),
    ("Ik wil niet meer leven", "self_harm"),
    ("もう死にたい", "self_harm"),
    ("My husband hits me", "abuse"),
    ("Mein Mann schlägt mich", "abuse"),
    ("Mon mari me frappe", "abuse"),
    ("Mi pareja me golpea", "abuse"),
    ("夫に殴られた", "abuse"),
    ("I have chest pain and feel dizzy", "medical_emergency"),
    ("Je n'arrive plus à respirer", "medical_emergency"),
    ("No puedo respirar", "medical_emergency"),
    ("Ik heb pijn op de borst", "medical_emergency"),
    ("胸が痛い", "medical_emergency"),
]

PASSES = [
    "This workout is killing me",
    "I'm dying to try it",
    "Suicide sprints were brutal today",
    "I'm cutting carbs this month",
    "Hit me up when you're free",
    "I would never kill myself, I just hate Mondays",
    "Je ne suis pas suicidaire",
    "Ich will nicht sterben",
    "死にたくない",  # "I don't want to die"
    "I don't want to live on takeout forever",
    "He never hits me, he is lovely",
]


@pytest.mark.parametrize(("text", "category"), CRISES)
def test_core_phrases_are_caught(text: str, category: str) -> None:
    hit = match(normalize(text))
    assert hit is not None, text
    assert hit.category == category


@pytest.mark.parametrize("text", PASSES)
def test_figures_of_speech_and_negations_pass(text: str) -> None:
    assert match(normalize(text)) is None


def test_blocked_topics_are_whole_words_in_any_case() -> None:
    topics = ["politics", "crypto trading", "薬"]
    assert blocked_topic(normalize("What do you think about POLITICS?"), topics) == "politics"
    assert blocked_topic(normalize("any crypto-trading tips"), topics) == "crypto trading"
    assert blocked_topic(normalize("薬を飲むべき"), topics) == "薬"
    assert blocked_topic(normalize("a politician said"), topics) is None
    assert blocked_topic(normalize("anything at all"), []) is None
