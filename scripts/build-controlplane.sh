#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go modules pinned
# in tools/controlplane/go.mod into the binary cache, and reuses them while go.mod and go.sum
# are unchanged. Everything comes from the Go module proxy.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/go-build.sh"
module="$root/tools/controlplane"
cache="${COACHOPS_CACHE:-$HOME/.cache/coachops}"
version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$module/go.mod")
out="$cache/bin/controlplane-$version"
# The release's version, stamped as Kubernetes' own build does (hack/lib/version.sh): without
# it the binaries report v0.0.0-master+$Format:%H$, which kubeVersion checks (Helm's) refuse.
minor=${version#v1.}
minor=${minor%%.*}
ldflags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $package.gitVersion=$version -X $package.gitMajor=1 -X $package.gitMinor=$minor"
  ldflags+=" -X $package.gitTreeState=clean"
done
key=$( { cat "$module/go.mod" "$module/go.sum"; echo "$ldflags"; } | sha256sum | cut -c1-16)
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

if go_cache_reuse "control plane $version" "$out" "$key" "${binaries[@]}"; then
  exit 0
fi

build() {
  go build -ldflags "$ldflags" -o "$out.partial/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
  mv "$out.partial/server" "$out.partial/etcd"  # the etcd server package is named server/v3
}

echo "control plane $version: building ${binaries[*]} (first build takes several minutes on 2 cores)"
cd "$module"
go_cache_build "control plane $version" "$out" "$key" build
