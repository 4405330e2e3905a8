#!/usr/bin/env bash
# Renders manifests/ from charts/coachops, so the chart is the one source of the install
# objects (manifests/samples/ is written by hand and left alone):
#
#   scripts/render-manifests.sh           # copy crds/*.yaml into the chart, render manifests/
#   scripts/render-manifests.sh --check [DIR]  # change nothing; exit 1 and show the diff
#                                              # when DIR (default manifests/) has drifted
#
# The chart's crds/ are copies of the CRDs `make crds` writes to crds/. The values used are
# charts/coachops/ci/manifests-values.yaml (the chart's defaults, plus the Namespace and
# the finalizer policy, which Helm users get from --create-namespace and the cluster's API
# versions). tests/chart/test_manifests_drift.py runs --check.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/charts/coachops"
check=0
manifests="$root/manifests"
if [[ "${1:-}" == "--check" ]]; then
  check=1
  manifests=${2:-$manifests}
fi
helm=$("$root/scripts/build-helm.sh" | tail -1)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/manifests"
mkdir -p "$out/operator" "$out/runtime" "$work/chart-crds"

# The CRDs only (crds/ also holds the finalizer policy, which the chart renders as a
# template so that it is installed only where the API exists).
for crd in "$root"/crds/coachops.dev_*.yaml; do
  grep -q '^kind: CustomResourceDefinition$' "$crd" && cp "$crd" "$work/chart-crds/"
done

if (( ! check )); then
  rm -f "$chart"/crds/*.yaml
  cp "$work"/chart-crds/*.yaml "$chart/crds/"
fi

rendered="$work/rendered"
"$helm" template coachops "$chart" --namespace coachops-system --include-crds \
  --values "$chart/ci/manifests-values.yaml" --output-dir "$rendered" >/dev/null
src="$rendered/coachops"

header() {
  echo "# Generated from charts/coachops by scripts/render-manifests.sh. Do not edit: change"
  echo "# the chart (or crds/coachops_crds, then \`make crds\`) and run the script again."
}
# Helm's label says Helm; objects applied from manifests/ are not Helm's.
emit() {
  local target=$1
  shift
  { header; cat "$@"; } | sed 's|app.kubernetes.io/managed-by: Helm|app.kubernetes.io/managed-by: kubectl|' \
    > "$out/$target"
}

emit crds.yaml "$src"/crds/*.yaml
emit finalizer-policy.yaml "$src/templates/finalizer-policy.yaml"
# The two RBAC files keep the Namespace, so each applies alone (the local stack and tests
# apply them on their own); runtime/rbac.yaml is the same without it, for kustomize.
emit operator/rbac.yaml "$src/templates/namespace.yaml" "$src/templates/operator-rbac.yaml"
emit runtime-rbac.yaml "$src/templates/namespace.yaml" "$src/templates/runtime-rbac.yaml"
emit runtime/rbac.yaml "$src/templates/runtime-rbac.yaml"
emit operator/deployment.yaml "$src/templates/operator-deployment.yaml"
emit runtime/migrate-job.yaml "$src/templates/migrations-job.yaml"
emit runtime/deployment.yaml "$src/templates/runtime-deployment.yaml"
emit runtime/worker.yaml "$src/templates/worker-deployment.yaml"
emit runtime/network-policies.yaml "$src/templates/networkpolicies.yaml"
{
  header
  cat <<'EOF'
# Everything the chart installs, for `kubectl apply --server-side -k manifests/`. The
# migrations Job is applied with the Deployments here (Helm runs it first, as a hook): to
# migrate before the pods start, apply runtime/migrate-job.yaml first and wait for it.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - crds.yaml
  - finalizer-policy.yaml
  - operator/rbac.yaml
  - runtime/rbac.yaml
  - runtime/migrate-job.yaml
  - operator/deployment.yaml
  - runtime/deployment.yaml
  - runtime/worker.yaml
  - runtime/network-policies.yaml
EOF
} > "$out/kustomization.yaml"

generated=(crds.yaml finalizer-policy.yaml kustomization.yaml runtime-rbac.yaml
  operator/rbac.yaml operator/deployment.yaml runtime/rbac.yaml runtime/deployment.yaml
  runtime/worker.yaml runtime/network-policies.yaml runtime/migrate-job.yaml)

if (( check )); then
  drift=0
  for file in "${generated[@]}"; do
    if ! diff -u "$manifests/$file" "$out/$file" > "$work/diff" 2>&1; then
      echo "manifests/$file differs from the chart's rendering:"
      head -40 "$work/diff"
      drift=1
    fi
  done
  for crd in "$work"/chart-crds/*.yaml; do
    if ! cmp -s "$crd" "$chart/crds/$(basename "$crd")"; then
      echo "charts/coachops/crds/$(basename "$crd") differs from crds/$(basename "$crd")"
      drift=1
    fi
  done
  for crd in "$chart"/crds/*.yaml; do
    [[ -f "$work/chart-crds/$(basename "$crd")" ]] \
      || { echo "charts/coachops/crds/$(basename "$crd") is not in crds/"; drift=1; }
  done
  if (( drift )); then
    echo "run scripts/render-manifests.sh and commit the result" >&2
    exit 1
  fi
  echo "manifests/ and the chart's CRDs match the chart and crds/"
  exit 0
fi

for file in "${generated[@]}"; do
  mkdir -p "$(dirname "$root/manifests/$file")"
  cp "$out/$file" "$root/manifests/$file"
done
echo "rendered manifests/ (${#generated[@]} files) and charts/coachops/crds/ from the chart"
