#!/usr/bin/env bash
# Builds Helm (which lints, renders, installs and tests charts/coachops) from the Go module
# pinned in tools/helm/go.mod into the binary cache, and reuses it while go.mod and go.sum
# are unchanged. Everything comes from the Go module proxy.
#
#   scripts/build-helm.sh      # prints the binary's path on its last line
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module="$root/tools/helm"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(awk '($1 == "require" && $2 == "helm.sh/helm/v4") {print $3}
               $1 == "helm.sh/helm/v4" {print $2}' "$module/go.mod" | head -1)
if [[ -z "$version" ]]; then
  echo "build-helm: no helm.sh/helm/v4 requirement in $module/go.mod" >&2
  exit 1
fi
out="$cache/bin/helm-$version"
key=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16)

if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$key" && -x "$out/helm" ]]; then
  echo "helm $version: reusing $out"
  echo "$out/helm"
  exit 0
fi

echo "helm $version: building (a few minutes on 2 cores)"
started=$(date +%s)
staging="$out.partial"
rm -rf "$staging"
mkdir -p "$staging"
cd "$module"
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
  -o "$staging/helm" helm.sh/helm/v4/cmd/helm
echo "$key" > "$staging/.stamp"
rm -rf "$out"
mv "$staging" "$out"
echo "helm $version: built in $(( $(date +%s) - started )) s into $out"
echo "$out/helm"
