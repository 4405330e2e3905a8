"""Embeddings from the converted all-MiniLM-L6-v2 on Ollama's own engine.

Besides shape and meaning, one test recomputes the embedding with numpy straight from the
safetensors weights and the original tokenizer, so a wrong conversion cannot pass.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from ollama import AsyncClient

from coachops_devstack.ollama import LocalModel, OllamaStack, create_model, upload_blob
from coachops_devstack.paths import REPO_ROOT

Vector = np.ndarray[Any, np.dtype[np.float64]]

PARAPHRASES = [
    ("A man is playing a guitar.", "Someone is strumming a guitar.", "Stock markets fell sharply."),
    ("How can I sleep better at night?", "Tips for improving my sleep", "The invoice is overdue."),
    ("I went for a run this morning.", "I jogged before breakfast today.", "Paris is in France."),
    (
        "I keep skipping my workouts.",
        "I have been missing my training sessions.",
        "The cat sat on the mat.",
    ),
]


def cosine(a: Vector, b: Vector) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def embed(ollama_client: AsyncClient, model: str, texts: list[str]) -> list[Vector]:
    response = await ollama_client.embed(model=model, input=texts)
    return [np.asarray(v, dtype=np.float64) for v in response.embeddings]


async def test_embeddings_have_the_models_dimension_and_unit_length(
    ollama_client: AsyncClient, ollama_stack: OllamaStack
) -> None:
    vectors = await embed(
        ollama_client, ollama_stack.embedding_model, ["hello", "a longer sentence"]
    )
    assert len(vectors) == 2
    for vector in vectors:
        assert vector.shape == (ollama_stack.embedding_dimension,)
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, abs_tol=1e-3)
    if ollama_stack.embedding_is_minilm:
        assert ollama_stack.embedding_dimension == 384


async def test_paraphrases_are_closer_than_unrelated_sentences(
    ollama_client: AsyncClient, ollama_stack: OllamaStack
) -> None:
    if not ollama_stack.embedding_is_minilm:
        pytest.skip(f"random fallback embedding model: {ollama_stack.embedding.source}")
    for anchor, paraphrase, unrelated in PARAPHRASES:
        a, p, u = await embed(
            ollama_client, ollama_stack.embedding_model, [anchor, paraphrase, unrelated]
        )
        # all-MiniLM-L6-v2 gives these pairs 0.44-0.82 and the unrelated ones about -0.1.
        assert cosine(a, p) > cosine(a, u) + 0.3, (anchor, cosine(a, p), cosine(a, u))
        assert cosine(a, p) > 0.35, (anchor, cosine(a, p))


async def test_ollama_matches_a_numpy_forward_pass_of_the_original_weights(
    ollama_client: AsyncClient, ollama_stack: OllamaStack
) -> None:
    if not ollama_stack.embedding_is_minilm:
        pytest.skip(f"random fallback embedding model: {ollama_stack.embedding.source}")
    tokenizers = pytest.importorskip("tokenizers")
    files = _minilm_files()
    tokenizer = tokenizers.Tokenizer.from_str(files["tokenizer.json"].decode())
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128 tokens
    tokenizer.no_truncation()
    weights = _safetensors(files["model.safetensors"])
    config = json.loads(files["config.json"])

    sentences = ["I want to build a daily walking habit.", "Coaching works best with clear goals."]
    response = await ollama_client.embed(model=ollama_stack.embedding_model, input=sentences)
    for sentence, served in zip(sentences, response.embeddings, strict=True):
        ids = tokenizer.encode(sentence).ids
        reference = _bert_mean_pooled(weights, config, ids)
        assert cosine(np.asarray(served), reference) > 0.999, sentence
    expected_tokens = sum(len(tokenizer.encode(s).ids) for s in sentences)
    assert response.prompt_eval_count == expected_tokens


async def test_the_fallback_tiny_bert_loads_and_embeds(
    ollama: str, ollama_client: AsyncClient, tmp_path: Path
) -> None:
    # The model make_models.py writes when the MiniLM weights cannot be had.
    made = _make_models().make_tiny_bert(tmp_path, True, "forced by the test")
    model = LocalModel.from_json(dataclasses.asdict(made))
    async with httpx.AsyncClient(base_url=ollama, timeout=120) as raw:
        await upload_blob(raw, model)
        await create_model(raw, "coachops-tiny-bert-test:latest", model)
    try:
        vectors = await embed(
            ollama_client, "coachops-tiny-bert-test:latest", ["walk daily", "sleep"]
        )
        assert [v.shape for v in vectors] == [(32,), (32,)]
        assert cosine(vectors[0], vectors[1]) < 0.999
    finally:
        await ollama_client.delete("coachops-tiny-bert-test:latest")


def _make_models() -> Any:
    """scripts/make_models.py as a module."""
    if "make_models" in sys.modules:
        return sys.modules["make_models"]
    spec = importlib.util.spec_from_file_location(
        "make_models", REPO_ROOT / "scripts" / "make_models.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_models"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _minilm_files() -> dict[str, bytes]:
    module = _make_models()
    names = ("tokenizer.json", "model.safetensors", "config.json")
    files, _ = module.minilm_files(module.cache_dir() / "models", names)
    return dict(files)


def _safetensors(data: bytes) -> dict[str, Vector]:
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    header.pop("__metadata__", None)
    body = data[8 + length :]
    out: dict[str, Vector] = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        out[name] = (
            np.frombuffer(body[start:end], dtype=np.float32)
            .reshape(entry["shape"])
            .astype(np.float64)
        )
    return out


def _layer_norm(x: Vector, weight: Vector, bias: Vector, eps: float) -> Vector:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: Vector = (x - mean) / np.sqrt(var + eps) * weight + bias
    return result


def _gelu(x: Vector) -> Vector:
    erf = np.vectorize(math.erf)
    result: Vector = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return result


def _bert_mean_pooled(w: dict[str, Vector], config: dict[str, Any], ids: list[int]) -> Vector:
    eps = float(config["layer_norm_eps"])
    heads = int(config["num_attention_heads"])
    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}."

        def linear(h: Vector, name: str, p: str = p) -> Vector:
            out: Vector = h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            return out

        q, k, v = (linear(x, f"attention.self.{part}") for part in ("query", "key", "value"))
        d = q.shape[-1] // heads
        q, k, v = (t.reshape(n, heads, d).transpose(1, 0, 2) for t in (q, k, v))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = _layer_norm(
            x + linear(context, "attention.output.dense"),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        hidden = _gelu(linear(x, "intermediate.dense"))
        x = _layer_norm(
            x + linear(hidden, "output.dense"),
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            eps,
        )
    pooled: Vector = x.mean(axis=0)
    normalized: Vector = pooled / np.linalg.norm(pooled)
    return normalized
