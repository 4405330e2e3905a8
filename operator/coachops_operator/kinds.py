"""Every kind of object the operator reads or writes, in one table.

``kube.py`` builds API paths from it, ``children.py`` watches the ``child`` kinds for
drift, and a shared tenant's leftover dedicated runtime is found by the ``runtime`` kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

from coachops_crds import constants as c


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    child: bool = False  # made per Creator, labelled, listed and watched for drift
    runtime: bool = False  # one of a dedicated runtime's objects (named c.RUNTIME_NAME)


RBAC = "rbac.authorization.k8s.io/v1"

KINDS = (
    Kind("v1", "Namespace", "namespaces", namespaced=False, child=True),
    Kind("v1", "ServiceAccount", "serviceaccounts", namespaced=True, child=True),
    Kind("v1", "Secret", "secrets", namespaced=True, child=True),
    Kind("v1", "Service", "services", namespaced=True, child=True, runtime=True),
    Kind("v1", "ResourceQuota", "resourcequotas", namespaced=True, child=True),
    Kind("v1", "LimitRange", "limitranges", namespaced=True, child=True),
    Kind("v1", "ConfigMap", "configmaps", namespaced=True),  # knowledge sources (read)
    Kind(RBAC, "RoleBinding", "rolebindings", namespaced=True, child=True),
    Kind(RBAC, "Role", "roles", namespaced=True),
    Kind(RBAC, "ClusterRole", "clusterroles", namespaced=False),
    Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", namespaced=True, child=True),
    Kind("apps/v1", "Deployment", "deployments", namespaced=True, child=True, runtime=True),
    Kind(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        namespaced=True,
        child=True,
        runtime=True,
    ),
    Kind(
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        namespaced=True,
        child=True,
        runtime=True,
    ),
    Kind("coordination.k8s.io/v1", "Lease", "leases", namespaced=True),
    Kind(c.API_VERSION, c.CREATOR_KIND, c.CREATOR_PLURAL, namespaced=False),
    Kind(c.API_VERSION, c.PROGRAM_KIND, c.PROGRAM_PLURAL, namespaced=True),
)

BY_KIND = {kind.kind: kind for kind in KINDS}
CHILD_KINDS = tuple(kind for kind in KINDS if kind.child)
RUNTIME_KINDS = tuple(kind for kind in KINDS if kind.runtime)
