#!/usr/bin/env bash
# Builds the Ollama server from the Go module pinned in tools/ollama/go.mod into the binary
# cache, CPU only: the ggml CPU backend and llama.cpp are compiled in through cgo with the
# machine's gcc/g++ (no cmake, no GPU libraries). Reused while go.mod, go.sum, the compiler
# flags (and, for a native build, the CPU's instruction sets) are unchanged. Everything
# comes from the Go module proxy.
#
#   scripts/build-ollama.sh        # prints the binary's path on its last line
#
# COACHOPS_OLLAMA_MARCH picks the instruction sets ggml is compiled for (gcc's -march):
#   native     (default) everything this CPU has, e.g. AVX2, FMA, F16C, AVX-512: for the
#              local cache only, since the binary may not run on another CPU;
#   x86-64-v3  AVX2, FMA and F16C: what anything shipped should use;
#   none       no -march: SSE2 only, the build this script made before SIMD was enabled.
# ggml picks its SIMD kernels with the compiler's own macros (__AVX2__, __FMA__, __F16C__,
# __AVX512F__, ...) and lists them at start-up ("CPU.0.AVX2=1 ..."), so -march is all it
# needs; each choice gets its own directory, so they can sit side by side.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
module="$root/tools/ollama"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(go_module_version "$module" github.com/ollama/ollama)
march="${COACHOPS_OLLAMA_MARCH:-native}"
if [[ ! "$march" =~ ^[a-z0-9][a-z0-9.-]*$ ]]; then
  echo "build-ollama: COACHOPS_OLLAMA_MARCH=$march is not a -march value" >&2
  exit 1
fi
# -O3 matches the flags ggml's own cgo directives ask for; the key covers them too.
if [[ "$march" == none ]]; then
  out="$cache/bin/ollama-$version"
  cflags="-O3"
else
  out="$cache/bin/ollama-$version-$march"
  cflags="-O3 -march=$march"
  command -v gcc >/dev/null || { echo "build-ollama: gcc is required" >&2; exit 1; }
  # The module carries ggml's AMX kernels (ggml-cpu/amx/*.cpp) but no Go file there, so cgo
  # never compiles them, while ggml-cpu.cpp calls them whenever __AMX_INT8__ is defined: on
  # a CPU with AMX, -march=native would not link. Turn off every AMX extension the -march
  # enables (ggml then keeps to its other CPU kernels).
  no_amx=$(echo | gcc "-march=$march" -dM -E - | sed -n 's/^#define __AMX_\([A-Z0-9]*\)__ 1$/-mno-amx-\L\1/p' | sort | tr '\n' ' ')
  [[ -z "$no_amx" ]] || cflags="$cflags ${no_amx% }"
fi
target() {
  # What -march=native resolves to on this machine (gcc's macros: its version and the
  # instruction sets), so a cache copied to another CPU is rebuilt, not run.
  [[ "$march" == native ]] || return 0
  echo | gcc -march=native -dM -E - | sort
}
key=$( (cat "$module/go.mod" "$module/go.sum" "$module"/include/*/*; echo "$cflags"; target) | sha256sum | cut -c1-16)

if go_cache_reuse "ollama $version" "$out" "$key" ollama; then
  echo "$out/ollama"
  exit 0
fi

for tool in go gcc g++; do
  command -v "$tool" >/dev/null || { echo "build-ollama: $tool is required" >&2; exit 1; }
done

# Go module zips omit every directory named "vendor", so the module lacks
# llama/llama.cpp/vendor/: the header-only libraries it holds come from Debian instead
# (nlohmann-json, stb), and miniaudio, which Debian does not package, from our stand-in
# in tools/ollama/include (audio input for multimodal models is disabled; see there).
headers=(/usr/include/nlohmann/json_fwd.hpp /usr/include/stb/stb_image.h)
missing=()
for header in "${headers[@]}"; do [[ -f "$header" ]] || missing+=("$header"); done
if (( ${#missing[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "ollama $version: installing nlohmann-json3-dev libstb-dev (missing ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nlohmann-json3-dev libstb-dev >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nlohmann-json3-dev libstb-dev >/dev/null; }
  else
    echo "build-ollama: missing ${missing[*]}; install: apt-get install nlohmann-json3-dev libstb-dev" >&2
    exit 1
  fi
fi

echo "ollama $version: building with $cflags (cgo, CPU only; the first build compiles llama.cpp/ggml and takes several minutes on 2 cores)"
started=$(date +%s)
cd "$module"
# go build is silent while cgo compiles llama.cpp: say every minute that it is still going.
( while sleep 60 >/dev/null 2>&1; do echo "ollama $version: still building ($(( $(date +%s) - started )) s)"; done ) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
go_cache_build "ollama $version" "$out" "$key" \
  env CGO_ENABLED=1 CGO_CPPFLAGS="-I$module/include" CGO_CFLAGS="$cflags" CGO_CXXFLAGS="$cflags" \
  go build -trimpath \
  -ldflags "-s -w -X github.com/ollama/ollama/version.Version=${version#v} -X github.com/ollama/ollama/server.mode=release" \
  -o "$out.partial/ollama" github.com/ollama/ollama
kill "$ticker" 2>/dev/null || true
echo "$out/ollama"
