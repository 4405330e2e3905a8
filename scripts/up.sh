#!/usr/bin/env bash
# The local stack in the foreground: control plane, PostgreSQL, Redis, ChromaDB, Mailpit,
# Ollama, the CRDs, the operator, the runtime, the e-mail worker and a sample tenant.
# Ctrl-C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
exec .venv/bin/python -m coachops_devstack up "$@"
