"""``kubectl coachops``: the platform team's view of coachops tenants, from a kubeconfig.

A kubectl plugin (the console script ``kubectl-coachops``): ``status``, ``describe``,
``pull`` read Creators and CoachingPrograms through the operator's own Kubernetes client;
``ingest`` uploads knowledge through the runtime's API. See docs/plugin.md.
"""
