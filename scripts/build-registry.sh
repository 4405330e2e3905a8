#!/usr/bin/env bash
# Builds the loopback OCI registry (tools/registry: go-containerregistry's pkg/registry behind
# a tiny main of ours) into the binary cache, and reuses it while go.mod, go.sum and main.go
# are unchanged. Everything comes from the Go module proxy.
#
#   scripts/build-registry.sh      # prints the binary's path on its last line
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module="$root/tools/registry"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(awk '$1 == "require" && $2 == "github.com/google/go-containerregistry" {print $3}
               $1 == "github.com/google/go-containerregistry" {print $2}' "$module/go.mod" | head -1)
if [[ -z "$version" ]]; then
  echo "build-registry: no github.com/google/go-containerregistry requirement in $module/go.mod" >&2
  exit 1
fi
out="$cache/bin/registry-$version"
key=$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-16)

if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$key" && -x "$out/registry" ]]; then
  echo "registry $version: reusing $out"
  echo "$out/registry"
  exit 0
fi

echo "registry $version: building"
started=$(date +%s)
staging="$out.partial"
rm -rf "$staging"
mkdir -p "$staging"
cd "$module"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$staging/registry" .
echo "$key" > "$staging/.stamp"
rm -rf "$out"
mv "$staging" "$out"
echo "registry $version: built in $(( $(date +%s) - started )) s into $out"
echo "$out/registry"
