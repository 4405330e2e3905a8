#!/usr/bin/env bash
# Builds the coachops image (operator, runtime and worker: one image, three commands) without
# a container engine, and pushes it when given a registry:
#
#   scripts/build-image.sh [--push host:port/coachops/coachops:tag]
#   scripts/build-image.sh --tools   (only the image builder and the node's pause binary)
#
# Two layers, so that an edit to the sources rebuilds only the small one:
#
# base (cached by the pinned requirements, pyproject.toml, the Debian package list, this
# script and the image builder):
#   a Debian root filesystem by mmdebstrap (essential set + tools/imagebuilder/
#   debian-packages.txt, documentation left out), the project's dependencies installed from
#   wheels pinned to the versions in .venv (the ones the tests ran with) under
#   /opt/coachops/lib, byte-compiled with unchecked hashes (no timestamps), a coachops user
#   (uid and gid 10001). Its root filesystem stays in the cache next to its image.
# app (cached by the base and every source file):
#   the project's own wheel under /opt/coachops/lib, byte-compiled and import-checked with
#   the base's interpreter (on a hard-linked copy of the base, left untouched).
#
# tools/imagebuilder writes each layer reproducibly (sorted entries, every time set to
# SOURCE_DATE_EPOCH) into an OCI layout. The image's package list (dpkg and Python, with
# versions) is written next to it as packages.txt. The three newest images and two newest
# bases stay in the cache; older ones are removed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
push=""
if [[ "${1:-}" == "--push" ]]; then push=$2; fi
cd "$root"

# ------------------------------------------------------------------ image builder
builder_module="$root/tools/imagebuilder"
builder_key=$(cat "$builder_module/go.mod" "$builder_module/go.sum" "$builder_module/main.go" \
  "$builder_module/pause/main.go" | sha256sum | cut -c1-16)
builder="$cache/bin/imagebuilder-$builder_key/imagebuilder"
if [[ ! -x "$builder" ]]; then
  echo "imagebuilder: building (and the node's pause binary)"
  mkdir -p "$(dirname "$builder")"
  (cd "$builder_module" && CGO_ENABLED=0 go build -o "$builder.partial" . \
    && CGO_ENABLED=0 go build -o "$(dirname "$builder")/pause" ./pause)
  mv "$builder.partial" "$builder"
fi
ln -sfn "imagebuilder-$builder_key" "$cache/bin/imagebuilder-current"
if [[ "${1:-}" == "--tools" ]]; then exit 0; fi

# ------------------------------------------------------------------ inputs and cache keys
work="$cache/image-work"
mkdir -p "$work" "$cache/images" "$cache/image-bases"
requirements="$work/requirements.txt"
# Pin every dependency to what .venv holds; the project itself comes from the tree.
.venv/bin/python -m pip freeze --exclude-editable --all 2>/dev/null \
  | grep -v -E '^(coachops|pip|setuptools|wheel)[=@ ]' > "$requirements"
base_key=$( { cat "$requirements" pyproject.toml "$root/tools/imagebuilder/debian-packages.txt" \
  "$0"; echo "$builder_key"; } | sha256sum | cut -c1-16)
sources=$(git ls-files crds operator runtime tools/devstack pyproject.toml | grep -v '^$')
key=$( { echo "$base_key"; echo "$sources" | xargs sha256sum; } | sha256sum | cut -c1-16)
base="$cache/image-bases/base-$base_key"
out="$cache/images/coachops-$key"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
lib=opt/coachops/lib

# layer ROOTFS LAYOUT INPUTS_KEY [BASE_LAYOUT]: prints "digest compressed-layer-bytes".
layer() {
  "$builder" build -rootfs "$1" -layout "$2" ${4:+-base "$4"} \
    -epoch "$epoch" -user 10001:10001 -workdir /opt/coachops \
    -env PATH=/opt/coachops/lib/bin:/usr/local/bin:/usr/bin:/bin \
    -env PYTHONPATH=/opt/coachops/lib -env PYTHONUNBUFFERED=1 -env PYTHONDONTWRITEBYTECODE=1 \
    -entrypoint '["python3", "-m"]' \
    -cmd '["coachops_runtime", "--host", "0.0.0.0", "--port", "8000"]' \
    -label "org.opencontainers.image.title=coachops" \
    -label "dev.coachops.inputs=$3"
}

# ------------------------------------------------------------------ base layer
if [[ -f "$base/digest" ]]; then
  echo "image base: reusing $base"
else
  started=$(date +%s)
  command -v mmdebstrap >/dev/null \
    || { echo "missing mmdebstrap: apt-get install mmdebstrap" >&2; exit 1; }
  rm -rf "$base.partial"
  mkdir -p "$base.partial"
  wheels="$base.partial/wheels"
  rootfs="$base.partial/rootfs"
  echo "image base: wheels"
  # async-timeout: redis needs it on Python < 3.11.3; Debian's python3 is 3.11.2 while .venv's
  # may be newer, so pip (which evaluates markers for .venv's interpreter) would leave it out.
  .venv/bin/python -m pip wheel --quiet --wheel-dir "$wheels" -c "$requirements" "$root" \
    "async-timeout>=4.0.3"
  rm -f "$wheels"/coachops-*.whl
  echo "image base: root filesystem (mmdebstrap)"
  include=$(grep -v -E '^(#|$)' "$root/tools/imagebuilder/debian-packages.txt" | paste -sd, -)
  SOURCE_DATE_EPOCH=$epoch mmdebstrap --quiet --mode=root --variant=essential \
    --include="$include" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$rootfs"
  echo "image base: installing the dependencies' wheels"
  .venv/bin/python -m pip install --quiet --no-deps --no-index --no-compile \
    --target "$rootfs/$lib" "$wheels"/*.whl
  chroot "$rootfs" python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
    "/$lib" >/dev/null
  echo "coachops:x:10001:10001:coachops:/nonexistent:/usr/sbin/nologin" >> "$rootfs/etc/passwd"
  echo "coachops:x:10001:" >> "$rootfs/etc/group"
  # What varies from one build to the next and is of no use at run time.
  rm -rf "$rootfs"/var/cache/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/var/lib/dpkg/*-old "$rootfs"/tmp/* "$rootfs"/root/.cache
  : > "$rootfs/etc/machine-id"
  { chroot "$rootfs" dpkg-query -W -f '${Package}=${Version}\n' | sed 's/^/deb /'
    (cd "$wheels" && ls *.whl | sed -E 's/^([^-]+)-([^-]+)-.*/pypi \1==\2/'); } \
    > "$base.partial/packages.txt"
  rm -rf "$wheels"
  echo "image base: OCI layer"
  read -r digest _ < <(layer "$rootfs" "$base.partial/oci" "$base_key")
  echo "$digest" > "$base.partial/digest"
  rm -rf "$base"
  mv "$base.partial" "$base"
  echo "image base: built in $(( $(date +%s) - started )) s into $base"
fi
touch "$base"

# ------------------------------------------------------------------ app layer
if [[ -f "$out/digest" ]]; then
  echo "image: reusing $out ($(cat "$out/digest"))"
else
  started=$(date +%s)
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  app="$out.partial/app"
  check="$out.partial/check"
  trap 'rm -rf "$check"' EXIT
  .venv/bin/python -m pip wheel --quiet --no-deps --wheel-dir "$out.partial/wheel" "$root"
  .venv/bin/python -m pip install --quiet --no-deps --no-index --no-compile \
    --target "$app/$lib" "$out.partial/wheel"/coachops-*.whl
  # pip records where the project's wheel came from, with the wheel's hash (its zip entries
  # carry the build time): the only bytes that differed between two builds of the same inputs.
  rm -f "$app/$lib"/coachops-*.dist-info/direct_url.json
  sed -i '/direct_url.json/d' "$app/$lib"/coachops-*.dist-info/RECORD
  # Compile and import-check with the base's own interpreter, on a hard-linked copy of the
  # base (new files only: the cached base keeps its bytes).
  cp -al "$base/rootfs" "$check"
  cp -a "$app/." "$check/"
  for package in $(cd "$app/$lib" && ls -d coachops_*); do
    chroot "$check" python3 -m compileall -q --invalidation-mode unchecked-hash \
      "/$lib/$package" >/dev/null
    rm -rf "${app:?}/$lib/$package"
    cp -a "$check/$lib/$package" "$app/$lib/$package"
  done
  # Every command of the image must at least import with the image's own interpreter.
  chroot "$check" env PYTHONPATH="/$lib" PYTHONDONTWRITEBYTECODE=1 python3 -c \
    "import kopf, coachops_runtime.app, coachops_runtime.worker.__main__, coachops_operator.reconcile"
  rm -rf "$check"
  { cat "$base/packages.txt"
    (cd "$out.partial/wheel" && ls *.whl | sed -E 's/^([^-]+)-([^-]+)-.*/pypi \1==\2/'); } \
    | LC_ALL=C sort > "$out.partial/packages.txt"
  cp "$out.partial/packages.txt" "$app/opt/coachops/packages.txt"
  echo "image: app layer and config (on base $(cat "$base/digest"))"
  read -r digest size < <(layer "$app" "$out.partial/oci" "$key" "$base/oci")
  rm -rf "$app" "$out.partial/wheel"
  echo "$digest" > "$out.partial/digest"
  echo "$size" > "$out.partial/layer-bytes"
  rm -rf "$out"
  mv "$out.partial" "$out"
  echo "image: built $digest (app layer $((size / 1024)) KiB) in $(( $(date +%s) - started )) s into $out"
fi
touch "$out"
# The newest images and bases stay; older ones only take room.
prune() { ls -1dt "$1"/*/ 2>/dev/null | tail -n +"$(( $2 + 1 ))" | xargs -r rm -rf; }
prune "$cache/images" 3
prune "$cache/image-bases" 2
echo "$out" > "$cache/images/latest"

if [[ -n "$push" ]]; then
  "$builder" push -layout "$out/oci" -ref "$push" -insecure
fi
