#!/usr/bin/env bash
# Builds Helm (which lints, renders, installs and tests charts/coachops) from the Go module
# pinned in tools/helm/go.mod into the binary cache, and reuses it while go.mod and go.sum
# are unchanged. Everything comes from the Go module proxy.
#
#   scripts/build-helm.sh      # prints the binary's path on its last line
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
module="$root/tools/helm"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(go_module_version "$module" helm.sh/helm/v4)
out="$cache/bin/helm-$version"
key=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16)

if go_cache_reuse "helm $version" "$out" "$key" helm; then
  echo "$out/helm"
  exit 0
fi

echo "helm $version: building (a few minutes on 2 cores)"
cd "$module"
go_cache_build "helm $version" "$out" "$key" env CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
  -o "$out.partial/helm" helm.sh/helm/v4/cmd/helm
echo "$out/helm"
