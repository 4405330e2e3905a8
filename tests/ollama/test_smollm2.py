"""SmolLM2-135M-Instruct through the real Ollama: a real model that answers in sentences.

Its words vary with the build and the machine, so the assertions are about the shape of a
sensible reply (it ends by itself, in English words, on topic, following the system turn)
rather than exact text; greedy decoding keeps each run repeatable.
"""

from __future__ import annotations

import json
import re

import httpx
from ollama import AsyncClient

from tests.ollama.conftest import ModelRegistry

GREEDY = {"temperature": 0.0, "seed": 1, "num_predict": 160}
SLEEP_WORDS = {
    "sleep", "bed", "bedtime", "night", "routine", "relax", "relaxing", "rest", "dark",
    "screen", "screens", "caffeine", "schedule", "wake", "tired", "calm", "read", "reading",
}  # fmt: skip


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text)


async def test_smollm2_answers_a_question_in_english_sentences(
    ollama_client: AsyncClient, instruct_model: str
) -> None:
    reply = await ollama_client.chat(
        model=instruct_model,
        messages=[
            {"role": "user", "content": "What is one simple habit that helps me sleep better?"}
        ],
        options=GREEDY,
    )
    text = reply.message.content or ""
    assert reply.done_reason == "stop", f"the reply should end by itself: {text!r}"
    found = words(text)
    assert len(found) >= 6, text
    ascii_share = sum(c.isascii() for c in text) / len(text)
    assert ascii_share > 0.97, text
    # Mostly real words, not token soup: letters in runs, few one-letter fragments.
    assert sum(len(w) == 1 and w.lower() not in {"a", "i"} for w in found) <= 2, text
    assert re.search(r"[A-Za-z][.!?]", text), f"no sentence ends in {text!r}"
    assert "<|im_" not in text, "ChatML control tokens leaked into the reply"
    on_topic = {w.lower() for w in found} & SLEEP_WORDS
    assert on_topic, f"a reply about sleep should name something about sleep: {text!r}"


PIRATE = {"arr", "ahoy", "matey", "ye", "yer", "aye", "ol'", "savvy", "hearty", "landlubber"}


async def test_smollm2_follows_the_system_prompt(
    ollama_client: AsyncClient, instruct_model: str
) -> None:
    question = {"role": "user", "content": "How do I get fit?"}
    pirate = await ollama_client.chat(
        model=instruct_model,
        messages=[
            {"role": "system", "content": "You are a pirate. Always talk like a pirate."},
            question,
        ],
        options=GREEDY,
    )
    plain = await ollama_client.chat(model=instruct_model, messages=[question], options=GREEDY)
    pirate_text = pirate.message.content or ""
    plain_text = plain.message.content or ""
    assert {w.lower() for w in words(pirate_text)} & PIRATE, pirate_text
    assert not {w.lower() for w in words(plain_text)} & PIRATE, plain_text


async def test_a_chat_without_a_system_message_gets_the_default_one(
    ollama_client: AsyncClient, instruct_model: str
) -> None:
    question = {"role": "user", "content": "How do I get fit?"}
    options = {**GREEDY, "num_predict": 1}
    default = await ollama_client.chat(model=instruct_model, messages=[question], options=options)
    short = await ollama_client.chat(
        model=instruct_model,
        messages=[{"role": "system", "content": "Hi."}, question],
        options=options,
    )
    assert default.prompt_eval_count is not None
    assert short.prompt_eval_count is not None
    # The default system prompt is about twenty tokens; a system turn of "Hi." replaces it.
    assert default.prompt_eval_count >= short.prompt_eval_count + 10


async def test_the_registry_holds_the_template_system_prompt_and_parameters(
    model_registry: ModelRegistry, instruct_model: str
) -> None:
    # A pull gets what the push sent: the manifest's layers, read here from the registry.
    name, tag = instruct_model.removeprefix(model_registry.address + "/").split(":")
    async with httpx.AsyncClient(
        base_url=model_registry.url, timeout=30, follow_redirects=True
    ) as registry:
        manifest = (
            await registry.get(
                f"/v2/{name}/manifests/{tag}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            )
        ).json()
        layers = {layer["mediaType"]: layer for layer in manifest["layers"]}

        async def blob(media_type: str) -> str:
            response = await registry.get(f"/v2/{name}/blobs/{layers[media_type]['digest']}")
            response.raise_for_status()
            return response.text

        template = await blob("application/vnd.ollama.image.template")
        system = await blob("application/vnd.ollama.image.system")
        params = json.loads(await blob("application/vnd.ollama.image.params"))
    assert layers["application/vnd.ollama.image.model"]["size"] == 98_362_432
    assert "<|im_start|>" in template
    assert "<|im_end|>" in template
    assert ".Messages" in template
    assert "coach" in system
    assert params["temperature"] == 0.2
    assert params["stop"] == ["<|im_end|>"]
