#!/usr/bin/env bash
# Builds Mailpit (the SMTP server the local stack and the tests deliver e-mail to, with an
# HTTP API to read what arrived) from the Go module pinned in tools/mailpit/go.mod into the
# binary cache, and reuses it while go.mod and go.sum are unchanged. Everything comes from
# the Go module proxy.
#
# The module holds the web UI's sources but not its script bundle (Mailpit's releases build
# it with npm), so this binary's single-page UI at / stays blank. Everything else works:
# the SMTP server, the HTTP API (/api/v1/...) that the tests read, and the server-rendered
# views of one message (/view/<id>.html, /view/<id>.txt, <id> may be "latest").
#
#   scripts/build-mailpit.sh      # prints the binary's path on its last line
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
module="$root/tools/mailpit"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(go_module_version "$module" github.com/axllent/mailpit)
out="$cache/bin/mailpit-$version"
key=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16)

if go_cache_reuse "mailpit $version" "$out" "$key" mailpit; then
  echo "$out/mailpit"
  exit 0
fi

echo "mailpit $version: building"
cd "$module"
go_cache_build "mailpit $version" "$out" "$key" env CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$version" \
  -o "$out.partial/mailpit" github.com/axllent/mailpit
echo "$out/mailpit"
