#!/usr/bin/env bash
# The local stack in the foreground: control plane, PostgreSQL, Redis, ChromaDB, the CRDs,
# the operator and the runtime, and a sample tenant. Ctrl-C stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
exec .venv/bin/python -m coachops_devstack up "$@"
