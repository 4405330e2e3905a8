#!/usr/bin/env bash
# Builds Prometheus and promtool from the Go module pinned in tools/prometheus/go.mod into the
# binary cache, and reuses them while go.mod and go.sum are unchanged. Everything comes from
# the Go module proxy.
#
# The module does not ship the web UI's built assets (Prometheus's releases build them with
# npm), so this server's pages under / are not there. Everything the stack and the tests use
# works: scraping, rule evaluation, the HTTP API (/api/v1/...), /-/ready; and promtool's
# `check rules` and `test rules`.
#
#   scripts/build-prometheus.sh      # prints the binaries' directory on its last line
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
module="$root/tools/prometheus"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(go_module_version "$module" github.com/prometheus/prometheus)
out="$cache/bin/prometheus-$version"
key=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16)

if go_cache_reuse "prometheus $version" "$out" "$key" prometheus promtool; then
  echo "$out"
  exit 0
fi

echo "prometheus $version: building (and promtool)"
cd "$module"
build() {
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.partial/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
}
go_cache_build "prometheus $version" "$out" "$key" build
echo "$out"
