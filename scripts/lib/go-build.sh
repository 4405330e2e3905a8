# Shared by the scripts/build-*.sh that build Go modules into the binary cache; sourced after
# `set -euo pipefail`. A build lives in its own directory (<cache>/bin/<name>-<version>) with
# a .stamp holding its cache key (a hash of the build's inputs). It is built in
# <directory>.partial and moved into place only once complete, so an interrupted or failed
# build is never mistaken for a finished one.

# go_module_version <module dir> <module path>: the version <module dir>/go.mod requires of
# <module path> (a `require` line or a line of a require block); fails, saying so, if none.
go_module_version() {
  local module=$1 path=$2 version
  version=$(awk -v path="$path" '($1 == "require" && $2 == path) {print $3}
                                 $1 == path {print $2}' "$module/go.mod" | head -1)
  if [[ -z "$version" ]]; then
    echo "$(basename "$0" .sh): no $path requirement in $module/go.mod" >&2
    return 1
  fi
  echo "$version"
}

# go_cache_reuse <label> <directory> <key> <binary>...: succeeds, printing "<label>: reusing
# <directory>", when the directory's stamp is <key> and it holds every binary, executable.
go_cache_reuse() {
  local label=$1 out=$2 key=$3 binary
  shift 3
  [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$key" ]] || return 1
  for binary in "$@"; do [[ -x "$out/$binary" ]] || return 1; done
  echo "$label: reusing $out"
}

# go_cache_build <label> <directory> <key> <command>...: runs the command, which writes the
# binaries into <directory>.partial (made empty first), then stamps it with <key> and puts it
# in place of <directory>. A failing command stops the calling script (set -e) unstamped.
go_cache_build() {
  local label=$1 out=$2 key=$3 started
  shift 3
  started=$(date +%s)
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  "$@"
  echo "$key" > "$out.partial/.stamp"
  rm -rf "$out"
  mv "$out.partial" "$out"
  echo "$label: built in $(( $(date +%s) - started )) s into $out"
}
