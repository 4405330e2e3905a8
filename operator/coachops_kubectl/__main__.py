"""``python -m coachops_kubectl``: the same as the ``kubectl-coachops`` console script."""

from coachops_kubectl.app import main

main()
