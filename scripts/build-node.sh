#!/usr/bin/env bash
# Builds the node's binaries into the binary cache and reuses them while their go.mod and go.sum
# are unchanged: kubelet, kube-proxy and kube-scheduler from tools/node/kubelet (the Kubernetes release of
# tools/controlplane), containerd 2.x, its runc shim and ctr from tools/node/containerd.
# runc and the CNI plugins come from Debian's packages (runc, containernetworking-plugins).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"

# ldflags=... build <module dir> <output name> <binaries...> -- <packages...>
build() {
  local module=$1 name=$2
  shift 2
  local binaries=() packages=()
  while [[ $1 != -- ]]; do binaries+=("$1"); shift; done
  shift
  packages=("$@")
  local out="$cache/bin/$name"
  local key
  key=$( { cat "$module/go.mod" "$module/go.sum"; [[ -z $ldflags ]] || echo "$ldflags"; } \
    | sha256sum | cut -c1-16)
  if go_cache_reuse "$name" "$out" "$key" "${binaries[@]}"; then
    return 0
  fi
  echo "$name: building ${binaries[*]} (first build takes several minutes on 2 cores)"
  # no_btrfs: containerd's btrfs snapshotter needs btrfs headers and the node uses overlayfs.
  go_cache_build "$name" "$out" "$key" env CGO_ENABLED="${CGO_ENABLED:-1}" \
    go -C "$module" build -tags no_btrfs -ldflags "$ldflags" -o "$out.partial/" "${packages[@]}"
}

k8s=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$root/tools/node/kubelet/go.mod")
controlplane=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$root/tools/controlplane/go.mod")
if [[ "$k8s" != "$controlplane" ]]; then
  echo "tools/node/kubelet pins Kubernetes $k8s but tools/controlplane pins $controlplane" >&2
  exit 1
fi
# The release's version, stamped as in scripts/build-controlplane.sh (the node reports it).
minor=${k8s#v1.}
minor=${minor%%.*}
stamp=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $package.gitVersion=$k8s -X $package.gitMajor=1 -X $package.gitMinor=$minor"
  stamp+=" -X $package.gitTreeState=clean"
done
containerd=$(awk '$1 == "require" && $2 == "github.com/containerd/containerd/v2" {print $3}' \
  "$root/tools/node/containerd/go.mod")

ldflags="" build "$root/tools/node/containerd" "containerd-$containerd" containerd containerd-shim-runc-v2 ctr -- \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr
ldflags="$stamp" build "$root/tools/node/kubelet" "node-$k8s" kubelet kube-proxy kube-scheduler -- \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kube-scheduler

for tool in runc /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback; do
  if ! command -v "$tool" >/dev/null; then
    echo "missing $tool: apt-get install runc containernetworking-plugins" >&2
    exit 1
  fi
done
