#!/usr/bin/env bash
# Builds the loopback OCI registry (tools/registry: go-containerregistry's pkg/registry behind
# a tiny main of ours) into the binary cache, and reuses it while go.mod, go.sum and main.go
# are unchanged. Everything comes from the Go module proxy.
#
#   scripts/build-registry.sh      # prints the binary's path on its last line
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
module="$root/tools/registry"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(go_module_version "$module" github.com/google/go-containerregistry)
out="$cache/bin/registry-$version"
key=$(cat "$module/go.mod" "$module/go.sum" "$module/main.go" | sha256sum | cut -c1-16)

if go_cache_reuse "registry $version" "$out" "$key" registry; then
  echo "$out/registry"
  exit 0
fi

echo "registry $version: building"
cd "$module"
go_cache_build "registry $version" "$out" "$key" \
  env CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.partial/registry" .
echo "$out/registry"
