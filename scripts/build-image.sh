#!/usr/bin/env bash
# Builds the coachops image (operator, runtime and worker: one image, three commands) without
# a container engine, and pushes it when given a registry:
#
#   scripts/build-image.sh [--push host:port/coachops/coachops:tag]
#   scripts/build-image.sh --tools   (only the image builder and the node's pause binary)
#
# 1. wheels: `pip wheel` of the project, its dependencies pinned to the versions in .venv
#    (the ones the tests ran with);
# 2. a Debian root filesystem by mmdebstrap (essential set + tools/imagebuilder/
#    debian-packages.txt, documentation left out), the wheels installed under
#    /opt/coachops/lib, byte-compiled with unchecked hashes (no timestamps), a coachops user
#    (uid and gid 10001);
# 3. tools/imagebuilder turns it into a one-layer OCI image (sorted entries, every time set
#    to SOURCE_DATE_EPOCH) in an OCI layout in the cache.
#
# The cache key is a hash of every input (sources, pinned requirements, the package list,
# this script, the image builder), so an unchanged tree reuses the image. The image's
# package list (dpkg and Python, with versions) is written next to it as packages.txt.
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

# ------------------------------------------------------------------ inputs and cache key
work="$cache/image-work"
mkdir -p "$work"
requirements="$work/requirements.txt"
# Pin every dependency to what .venv holds; the project itself comes from the tree.
.venv/bin/python -m pip freeze --exclude-editable --all 2>/dev/null \
  | grep -v -E '^(coachops|pip|setuptools|wheel)[=@ ]' > "$requirements"
sources=$(git ls-files crds operator runtime tools/devstack pyproject.toml | grep -v '^$')
key=$( { cat "$requirements" "$root/tools/imagebuilder/debian-packages.txt" "$0";
         echo "$builder_key"; echo "$sources" | xargs sha256sum; } | sha256sum | cut -c1-16)
out="$cache/images/coachops-$key"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}

if [[ -f "$out/digest" ]]; then
  echo "image: reusing $out ($(cat "$out/digest"))"
else
  started=$(date +%s)
  for tool in mmdebstrap; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install mmdebstrap" >&2; exit 1; }
  done
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  wheels="$out.partial/wheels"
  echo "image: wheels"
  # async-timeout: redis needs it on Python < 3.11.3; Debian's python3 is 3.11.2 while .venv's
  # may be newer, so pip (which evaluates markers for .venv's interpreter) would leave it out.
  .venv/bin/python -m pip wheel --quiet --wheel-dir "$wheels" -c "$requirements" "$root" \
    "async-timeout>=4.0.3"
  rootfs="$work/rootfs-$key"
  rm -rf "$rootfs"
  echo "image: root filesystem (mmdebstrap)"
  include=$(grep -v -E '^(#|$)' "$root/tools/imagebuilder/debian-packages.txt" | paste -sd, -)
  SOURCE_DATE_EPOCH=$epoch mmdebstrap --quiet --mode=root --variant=essential \
    --include="$include" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$rootfs"
  echo "image: installing wheels"
  lib="$rootfs/opt/coachops/lib"
  .venv/bin/python -m pip install --quiet --no-deps --no-index --no-compile \
    --target "$lib" "$wheels"/*.whl
  # pip records where the project's wheel came from, with the wheel's hash (its zip entries
  # carry the build time): the only bytes that differed between two builds of the same inputs.
  rm -f "$lib"/coachops-*.dist-info/direct_url.json
  sed -i '/direct_url.json/d' "$lib"/coachops-*.dist-info/RECORD
  chroot "$rootfs" python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
    /opt/coachops/lib >/dev/null
  # Every command of the image must at least import with the image's own interpreter.
  chroot "$rootfs" env PYTHONPATH=/opt/coachops/lib python3 -c \
    "import kopf, coachops_runtime.app, coachops_runtime.worker.__main__, coachops_operator.reconcile"
  echo "coachops:x:10001:10001:coachops:/nonexistent:/usr/sbin/nologin" >> "$rootfs/etc/passwd"
  echo "coachops:x:10001:" >> "$rootfs/etc/group"
  # What varies from one build to the next and is of no use at run time.
  rm -rf "$rootfs"/var/cache/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/var/lib/dpkg/*-old "$rootfs"/tmp/* "$rootfs"/root/.cache
  : > "$rootfs/etc/machine-id"
  { chroot "$rootfs" dpkg-query -W -f '${Package}=${Version}\n' | sed 's/^/deb /'
    (cd "$wheels" && ls *.whl | sed -E 's/^([^-]+)-([^-]+)-.*/pypi \1==\2/'); } \
    | LC_ALL=C sort > "$out.partial/packages.txt"
  cp "$out.partial/packages.txt" "$lib/../packages.txt"
  echo "image: OCI layer and config"
  read -r digest size < <("$builder" build -rootfs "$rootfs" -layout "$out.partial/oci" \
    -epoch "$epoch" -user 10001:10001 -workdir /opt/coachops \
    -env PATH=/opt/coachops/lib/bin:/usr/local/bin:/usr/bin:/bin \
    -env PYTHONPATH=/opt/coachops/lib -env PYTHONUNBUFFERED=1 -env PYTHONDONTWRITEBYTECODE=1 \
    -entrypoint '["python3", "-m"]' \
    -cmd '["coachops_runtime", "--host", "0.0.0.0", "--port", "8000"]' \
    -label "org.opencontainers.image.title=coachops" \
    -label "dev.coachops.inputs=$key")
  rm -rf "$rootfs" "$wheels"
  echo "$digest" > "$out.partial/digest"
  echo "$size" > "$out.partial/layer-bytes"
  rm -rf "$out"
  mv "$out.partial" "$out"
  echo "image: built $digest (compressed layer $((size / 1048576)) MiB) in $(( $(date +%s) - started )) s into $out"
fi
echo "$out" > "$cache/images/latest"

if [[ -n "$push" ]]; then
  "$builder" push -layout "$out/oci" -ref "$push" -insecure
fi
