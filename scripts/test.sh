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
# mypy's incremental cache outside the clone: a fresh clone re-checks only what changed
# (mypy compares each file's hash with the cache's) instead of all of it (~30 s).
MYPY_CACHE_DIR="${COACHOPS_CACHE:-$HOME/.cache/coachops}/mypy" mypy
lint-imports
python -m coachops_crds --check

printf '\n==> pytest, under coverage\n'
export COACHOPS_RUN_DIR="${TMPDIR:-/tmp}/coachops-test-$$"
# Every Python process of the run (pytest and the operator, runtime and tools it starts)
# writes its own data file here; [tool.coverage.run] in pyproject.toml says what and how.
export COVERAGE_FILE="$COACHOPS_RUN_DIR/coverage/.coverage"
mkdir -p "$COACHOPS_RUN_DIR/coverage"
set +e
python -m coverage run -m pytest --basetemp="$COACHOPS_RUN_DIR/pytest" "$@"
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

printf '\n==> line coverage (coachops_crds, coachops_operator, coachops_runtime, coachops_kubectl)\n'
# The whole suite must reach [tool.coverage.report] fail_under; a run narrowed by pytest
# arguments only reports.
if python -m coverage combine --quiet; then
  python -m coverage report --skip-covered --sort=cover --fail-under=0
  fail_under=()
  (( $# )) && fail_under=(--fail-under 0)
  if ! python scripts/coverage_table.py "${fail_under[@]}"; then
    status=1
  fi
  kept="${TMPDIR:-/tmp}/coachops-coverage"
  cp "$COVERAGE_FILE" "$kept"
  echo "combined data: $kept (python -m coverage html --data-file=$kept)"
else
  echo "no coverage data was written" >&2
  status=1
fi
rm -rf "$COACHOPS_RUN_DIR"
echo "test run finished in $(( $(date +%s) - started )) s (exit $status)"
exit "$status"
