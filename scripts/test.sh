#!/usr/bin/env bash
# The whole test suite, from a fresh machine: bootstrap, static checks, pytest, and a check
# that no process started by the tests survived them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$(date +%s)
scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"

printf '\n==> static checks\n'
ruff check .
ruff format --check .
mypy
lint-imports
python -m coachops_crds --check

printf '\n==> pytest\n'
export COACHOPS_RUN_DIR="${TMPDIR:-/tmp}/coachops-test-$$"
set +e
python -m pytest --basetemp="$COACHOPS_RUN_DIR/pytest" "$@"
status=$?
set -e
if [[ $status == 5 ]]; then
  echo "pytest collected no tests: that is a failure of the suite, not a pass" >&2
  status=1
fi

leftovers=$(pgrep -af -- "$COACHOPS_RUN_DIR" || true)
if [[ -n $leftovers ]]; then
  echo "processes started by the tests are still running:" >&2
  echo "$leftovers" >&2
  pkill -KILL -f -- "$COACHOPS_RUN_DIR" || true
  status=1
fi
rm -rf "$COACHOPS_RUN_DIR"
echo "test run finished in $(( $(date +%s) - started )) s (exit $status)"
exit "$status"
