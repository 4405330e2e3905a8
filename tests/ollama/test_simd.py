"""The Ollama build runs ggml with the instruction sets it was compiled for.

scripts/build-ollama.sh compiles ggml with ``-march`` (native by default); ggml lists what
it was compiled with when a runner starts ("CPU.0.AVX2=1 ..."). A build without SIMD
lists only ``CPU.0.LLAMAFILE=1``, and runs SmolLM2 several times slower.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ollama import AsyncClient

from coachops_devstack.ollama import OllamaStack, ollama_march

# /proc/cpuinfo flag -> the name ggml logs for it.
CPU_FLAGS = {"avx": "AVX", "avx2": "AVX2", "fma": "FMA", "f16c": "F16C", "avx512f": "AVX512"}
# What a named -march level guarantees, for builds that are not native.
MARCH_FEATURES = {"x86-64-v3": {"AVX", "AVX2", "FMA", "F16C"}}


def expected_features(march: str) -> set[str]:
    if march == "native":
        flags: set[str] = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        return {name for flag, name in CPU_FLAGS.items() if flag in flags}
    if march in MARCH_FEATURES:
        return MARCH_FEATURES[march]
    if march == "none":
        return set()
    pytest.skip(f"no expectation for COACHOPS_OLLAMA_MARCH={march}")


async def test_the_log_lists_the_cpu_features_the_build_uses(
    ollama_stack: OllamaStack, ollama_client: AsyncClient, instruct_model: str
) -> None:
    march = ollama_march()
    expected = expected_features(march)
    await ollama_client.generate(model=instruct_model, prompt="hi", options={"num_predict": 1})
    features = ollama_stack.cpu_features()
    assert features, f"no 'CPU.0.' line in {ollama_stack.log_path}"
    listed = {name for name, value in features.items() if value == "1"}
    assert expected <= listed, f"missing {sorted(expected - listed)}; listed {sorted(listed)}"
    if march == "none":  # the build without SIMD must not claim any
        assert not listed & set(CPU_FLAGS.values()), sorted(listed)
