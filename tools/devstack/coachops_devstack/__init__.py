"""Local development stack and test harness for coachops.

Starts real components on loopback: etcd, kube-apiserver and kube-controller-manager
built from the pinned Kubernetes release, PostgreSQL, Redis and ChromaDB. Used by the
pytest fixtures in tests/ and by ``make up``.
"""
