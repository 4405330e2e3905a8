#!/usr/bin/env bash
# Installs what the stack and the tests need, idempotently: Debian packages (PostgreSQL,
# Redis) when missing, the virtualenv with the project and its dev extras, and the
# binaries built from Go modules (cached under ${COACHOPS_CACHE:-~/.cache/coachops}).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n==> %s\n' "$*"; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
# The node (tests/node, make up --node): runc, CNI plugins, iptables for kube-proxy,
# nsenter/ip for its network namespace, mmdebstrap for the image's root filesystem.
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
# tests/widget: the chat widget in a real browser (Playwright drives this chromium).
command -v chromium >/dev/null || missing+=(chromium)
command -v go >/dev/null || { echo "Go is required (https://go.dev/doc/install)" >&2; exit 1; }
if (( ${#missing[@]} )); then
  step "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) != 0 ]]; then
    echo "run as root or install them yourself: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The packages start system-wide servers; the stack runs its own on free ports.
  for service in redis-server postgresql; do
    service "$service" stop >/dev/null 2>&1 || true
  done
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [[ ! -x .venv/bin/python ]]; then
  step "creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
key=$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f ".venv/.installed-$key" ]]; then
  step "installing the project and its dev extras into .venv"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch ".venv/.installed-$key"
fi

step "control-plane binaries"
scripts/build-controlplane.sh
step "Mailpit (the local SMTP server)"
scripts/build-mailpit.sh
step "Prometheus and promtool (the local stack's metrics, the alerts' unit tests)"
scripts/build-prometheus.sh
step "Helm (charts/coachops)"
scripts/build-helm.sh
step "the node: kubelet, kube-proxy, kube-scheduler, containerd"
scripts/build-node.sh
step "Ollama and the local model registry"
scripts/build-ollama.sh
scripts/build-registry.sh
step "local models"
.venv/bin/python scripts/make_models.py
