"""Chat with the tiny model through the official client: load, tokenise, generate, stream.

The model has random weights, so its words are nonsense; what is tested is the path.
"""

from __future__ import annotations

from ollama import AsyncClient, ChatResponse


async def test_chat_streams_tokens(ollama_client: AsyncClient, pulled_chat_model: str) -> None:
    chunks: list[ChatResponse] = []
    stream = await ollama_client.chat(
        model=pulled_chat_model,
        messages=[
            {"role": "system", "content": "You are a friendly coach."},
            {"role": "user", "content": "I walked every morning this week. What next?"},
        ],
        stream=True,
        options={"num_predict": 24, "seed": 7, "temperature": 0.8},
    )
    async for chunk in stream:
        chunks.append(chunk)

    assert len(chunks) > 5, "the reply should arrive in many pieces"
    *partial, last = chunks
    assert all(not c.done for c in partial)
    assert last.done
    assert last.done_reason in {"length", "stop"}
    assert last.eval_count is not None
    assert 0 < last.eval_count <= 24
    assert last.prompt_eval_count is not None
    assert last.prompt_eval_count > 10
    text = "".join(c.message.content or "" for c in chunks)
    assert text.strip(), "the streamed pieces should add up to some text"
    assert all(c.message.role == "assistant" for c in chunks)


async def test_chat_without_streaming_and_with_a_fixed_seed_is_repeatable(
    ollama_client: AsyncClient, pulled_chat_model: str
) -> None:
    messages = [{"role": "user", "content": "Plan my week"}]
    options = {"num_predict": 12, "seed": 42, "temperature": 0.0}
    first = await ollama_client.chat(model=pulled_chat_model, messages=messages, options=options)
    second = await ollama_client.chat(model=pulled_chat_model, messages=messages, options=options)
    assert first.done
    assert second.done
    assert first.message.content
    assert first.message.content == second.message.content
    assert first.eval_count == 12  # the reply runs to num_predict: nothing stops it earlier


async def test_the_model_default_caps_a_reply(
    ollama_client: AsyncClient, pulled_chat_model: str
) -> None:
    # The harness bakes num_predict=64 into the chat model, so replies stay short even
    # when the caller sets no limit.
    reply = await ollama_client.chat(
        model=pulled_chat_model, messages=[{"role": "user", "content": "Tell me everything"}]
    )
    assert reply.eval_count is not None
    assert reply.eval_count <= 64
