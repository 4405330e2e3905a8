# The two commands a newcomer needs; both install what they need on first use.
.PHONY: test up crds lint

test:  ## install everything, then run static checks and the whole test suite
	scripts/test.sh

up:  ## run the local stack in the foreground (Ctrl-C stops everything)
	scripts/up.sh

crds:  ## regenerate crds/ from the models in crds/coachops_crds, then the chart's copies and manifests/
	.venv/bin/python -m coachops_crds
	scripts/render-manifests.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/lint-imports
