"""Pure builders of the Kubernetes objects a Creator owns.

Every function takes the Creator's name, uid and parsed spec (plus plain settings) and
returns a manifest as a dict, ready for server-side apply. Nothing here does I/O, so each
builder is unit-tested on its own and the drift check compares live objects with exactly
what the builders say.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec

Manifest = dict[str, Any]

RUNTIME_PORT = 8000
RESTRICTED = "restricted"
INGRESS_NAMESPACE_LABEL = "coachops.dev/ingress"
STORES_NAMESPACE_LABEL = "coachops.dev/stores"
STORE_PORTS = (5432, 6379, 8000, 11434)


@dataclass(frozen=True)
class CreatorRef:
    """The owner of every object built here."""

    name: str
    uid: str

    @property
    def namespace(self) -> str:
        return c.creator_namespace(self.name)

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": c.API_VERSION,
            "kind": c.CREATOR_KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class RuntimeEnv:
    """What a dedicated runtime needs to know that is not in the Creator's spec."""

    image: str
    chroma_url: str
    # kid -> PEM public key: how the runtime verifies the platform's tokens (it never signs).
    jwt_public_keys: Mapping[str, str] = field(default_factory=dict)
    jwt_issuer: str = "https://coachops.dev"


def labels(creator: CreatorRef, component: str) -> dict[str, str]:
    return {
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_CREATOR: creator.name,
        c.LABEL_COMPONENT: component,
    }


def _meta(creator: CreatorRef, name: str, component: str, *, owned: bool = False) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": creator.namespace,
        "labels": labels(creator, component),
    }
    if owned:
        meta["ownerReferences"] = [creator.owner_reference()]
    return meta


# ---------------------------------------------------------------- namespace and RBAC


def namespace(creator: CreatorRef) -> Manifest:
    """The tenant namespace, Pod Security ``restricted`` enforced, owned by the Creator."""
    pod_security = {
        f"pod-security.kubernetes.io/{mode}": RESTRICTED for mode in ("enforce", "audit", "warn")
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": creator.namespace,
            "labels": {
                **labels(creator, "tenant"),
                **pod_security,
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
            "ownerReferences": [creator.owner_reference()],
        },
    }


def service_account(creator: CreatorRef) -> Manifest:
    """The identity of the tenant's dedicated runtime pods."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(creator, c.TENANT_SERVICE_ACCOUNT, "rbac"),
        "automountServiceAccountToken": False,
    }


_PROGRAM_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
# What every tenant namespace grants is the same, so it is defined once as a ClusterRole
# and granted per namespace by a RoleBinding (which confines it to that namespace): two
# objects per tenant fewer to write, watch and keep.
TENANT_RUNTIME_ROLE = "coachops-tenant-runtime"
PROGRAM_WRITER = "coachops-runtime-programs"  # the name manifests/runtime-rbac.yaml uses


def _cluster_role(name: str, component: str, rules: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {
                c.LABEL_MANAGED_BY: c.MANAGED_BY,
                c.LABEL_PART_OF: c.PART_OF,
                c.LABEL_COMPONENT: component,
            },
        },
        "rules": rules,
    }


def cluster_roles() -> list[Manifest]:
    """The ClusterRoles tenant namespaces bind; the operator applies them at startup.
    Neither grants anything until a RoleBinding in a tenant namespace refers to it."""
    return [
        # What a tenant's own (dedicated) runtime may do: its programs, config and secrets.
        _cluster_role(
            TENANT_RUNTIME_ROLE,
            "rbac",
            [
                {"apiGroups": [c.GROUP], "resources": [c.PROGRAM_PLURAL], "verbs": _PROGRAM_VERBS},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            ],
        ),
        # What the shared runtime may do in a tenant namespace: CoachingPrograms only.
        _cluster_role(
            PROGRAM_WRITER,
            "runtime",
            [
                {"apiGroups": [c.GROUP], "resources": [c.PROGRAM_PLURAL], "verbs": _PROGRAM_VERBS},
                {
                    "apiGroups": [c.GROUP],
                    "resources": [f"{c.PROGRAM_PLURAL}/status"],
                    "verbs": ["get"],
                },
            ],
        ),
    ]


def _binding(creator: CreatorRef, role: str, account: str, account_namespace: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(creator, role, "rbac"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }


def tenant_role_binding(creator: CreatorRef) -> Manifest:
    """The tenant's runtime identity gets its ClusterRole, in this namespace only."""
    return _binding(creator, TENANT_RUNTIME_ROLE, c.TENANT_SERVICE_ACCOUNT, creator.namespace)


def program_writer_binding(creator: CreatorRef) -> Manifest:
    """The shared runtime may write CoachingPrograms here, and nothing else."""
    return _binding(creator, PROGRAM_WRITER, c.SHARED_RUNTIME_SERVICE_ACCOUNT, c.SYSTEM_NAMESPACE)


# Bindings an earlier version made to namespaced Roles (roleRef cannot change in place).
LEGACY_ROLES = (c.TENANT_SERVICE_ACCOUNT, "coachops-program-writer")


# ---------------------------------------------------------------- quota and limits


def resource_quota(creator: CreatorRef, spec: CreatorSpec) -> Manifest:
    """The plan as a ResourceQuota: compute, pods and the number of CoachingPrograms."""
    plan = spec.plan
    pods = 2 * spec.runtime.max_replicas if spec.isolation == "dedicated" else 0
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(creator, "coachops-plan", "quota"),
        "spec": {
            "hard": {
                "requests.cpu": plan.cpu,
                "limits.cpu": plan.cpu,
                "requests.memory": plan.memory,
                "limits.memory": plan.memory,
                "pods": str(pods),
                "services.loadbalancers": "0",
                "services.nodeports": "0",
                f"count/{c.PROGRAM_PLURAL}.{c.GROUP}": str(plan.max_programs),
            }
        },
    }


def limit_range(creator: CreatorRef, spec: CreatorSpec) -> Manifest:
    """Defaults for containers that name no resources, so the quota can admit them."""
    res = spec.runtime.resources
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(creator, "coachops-defaults", "quota"),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": res.cpu_limit, "memory": res.memory_limit},
                    "defaultRequest": {"cpu": res.cpu_request, "memory": res.memory_request},
                }
            ]
        },
    }


# ---------------------------------------------------------------- network


def network_policy(creator: CreatorRef) -> Manifest:
    """Deny by default; admit the shared runtime and the ingress; egress to stores and DNS.

    One policy selects every pod and lists both policy types, so anything not listed is
    denied in both directions.
    """

    def namespaces(key: str, value: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {key: value}}}

    system = namespaces("kubernetes.io/metadata.name", c.SYSTEM_NAMESPACE)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(creator, "coachops-tenant", "network"),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        system,
                        namespaces(INGRESS_NAMESPACE_LABEL, "true"),
                        {"podSelector": {}},
                    ]
                }
            ],
            "egress": [
                {
                    "to": [namespaces("kubernetes.io/metadata.name", "kube-system")],
                    "ports": [
                        {"protocol": "UDP", "port": 53},
                        {"protocol": "TCP", "port": 53},
                    ],
                },
                {
                    "to": [system, namespaces(STORES_NAMESPACE_LABEL, "true")],
                    "ports": [{"protocol": "TCP", "port": port} for port in STORE_PORTS],
                },
            ],
        },
    }


# ---------------------------------------------------------------- credentials


def credentials_secret(creator: CreatorRef, data: dict[str, str]) -> Manifest:
    """The tenant's store credentials; ``data`` is plain text, encoded here."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(creator, c.TENANT_SECRET, "credentials"),
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def database_url(role: str, password: str, host: str, port: int, database: str) -> str:
    return f"postgresql://{role}:{password}@{host}:{port}/{database}"


def redis_url(user: str, password: str, host: str, port: int) -> str:
    return f"redis://{user}:{password}@{host}:{port}/0"


# ---------------------------------------------------------------- dedicated runtime


def _runtime_labels(creator: CreatorRef) -> dict[str, str]:
    return {"app.kubernetes.io/name": c.RUNTIME_NAME, c.LABEL_CREATOR: creator.name}


def runtime_deployment(creator: CreatorRef, spec: CreatorSpec, env: RuntimeEnv) -> Manifest:
    """The dedicated runtime: restricted pods, probes, the tenant's own credentials."""
    res = spec.runtime.resources
    secret = c.TENANT_SECRET
    # Only what the runtime's settings read: it derives the tenant's id, Redis prefix and
    # Chroma tenant from COACHOPS_TENANT as the operator does (coachops_crds.constants).
    tenant_env = {
        "COACHOPS_ENVIRONMENT": "production",
        "COACHOPS_TENANT": creator.name,
        "COACHOPS_CHROMA_URL": env.chroma_url,
        "COACHOPS_JWT_ISSUER": env.jwt_issuer,
        "COACHOPS_JWT_PUBLIC_KEYS": json.dumps(dict(sorted(env.jwt_public_keys.items()))),
    }

    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    def probe(path: str, period: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        }

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(creator, c.RUNTIME_NAME, "runtime"),
        "spec": {
            "replicas": 0 if spec.suspended else spec.runtime.replicas,
            "selector": {"matchLabels": _runtime_labels(creator)},
            "template": {
                "metadata": {"labels": {**labels(creator, "runtime"), **_runtime_labels(creator)}},
                "spec": {
                    "serviceAccountName": c.TENANT_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": True,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "runtime",
                            "image": spec.runtime.image or env.image,
                            # One image serves the operator, the runtime and the worker.
                            "command": [
                                "python3",
                                "-m",
                                "coachops_runtime",
                                "--host",
                                "0.0.0.0",  # noqa: S104 - the pod's own network namespace
                                "--port",
                                str(RUNTIME_PORT),
                            ],
                            "ports": [{"name": "http", "containerPort": RUNTIME_PORT}],
                            "env": [
                                *({"name": k, "value": v} for k, v in tenant_env.items()),
                                from_secret("COACHOPS_DATABASE_URL", "DATABASE_URL"),
                                from_secret("COACHOPS_REDIS_URL", "REDIS_URL"),
                            ],
                            "resources": {
                                "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
                                "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
                            },
                            "readinessProbe": probe("/readyz", 5),
                            "livenessProbe": probe("/livez", 10),
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                        }
                    ],
                    # The root filesystem is read-only; Python's tempfile needs somewhere.
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def runtime_service(creator: CreatorRef) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(creator, c.RUNTIME_NAME, "runtime"),
        "spec": {
            "type": "ClusterIP",
            "selector": _runtime_labels(creator),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def runtime_hpa(creator: CreatorRef, spec: CreatorSpec) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(creator, c.RUNTIME_NAME, "runtime"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": c.RUNTIME_NAME,
            },
            "minReplicas": spec.runtime.replicas,
            "maxReplicas": spec.runtime.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def runtime_pdb(creator: CreatorRef) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(creator, c.RUNTIME_NAME, "runtime"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _runtime_labels(creator)}},
    }


# ---------------------------------------------------------------- the whole set


def namespaced_children(creator: CreatorRef, spec: CreatorSpec) -> list[Manifest]:
    """Every object in the tenant namespace except the credentials Secret."""
    return [
        service_account(creator),
        tenant_role_binding(creator),
        program_writer_binding(creator),
        resource_quota(creator, spec),
        limit_range(creator, spec),
        network_policy(creator),
    ]


def runtime_objects(creator: CreatorRef, spec: CreatorSpec, env: RuntimeEnv) -> list[Manifest]:
    """The dedicated runtime's objects (empty list when the tenant is shared)."""
    if spec.isolation != "dedicated":
        return []
    return [
        runtime_deployment(creator, spec, env),
        runtime_service(creator),
        runtime_hpa(creator, spec),
        runtime_pdb(creator),
    ]


def _shapes() -> dict[str, Manifest]:
    """One manifest of each kind the builders make: the fields ``children.Children``
    keeps of live objects."""
    spec = CreatorSpec.model_validate(
        {"displayName": "x", "contact": {"email": "x@x.x"}, "isolation": "dedicated"}
    )
    ref = CreatorRef("shape", "uid")
    made = [
        namespace(ref),
        *namespaced_children(ref, spec),
        *runtime_objects(ref, spec, RuntimeEnv(image="i", chroma_url="u")),
    ]
    shapes = {m["kind"]: m for m in made}
    shapes["Secret"] = credentials_secret(ref, {})
    return shapes


SHAPES = _shapes()


def key(manifest: Manifest) -> tuple[str, str, str]:
    """(kind, namespace, name): how the drift check finds a live object."""
    meta = manifest["metadata"]
    return (manifest["kind"], meta.get("namespace", ""), meta["name"])


# ---------------------------------------------------------------- validation


class ImpossibleSpecError(ValueError):
    """A spec the operator can never satisfy; the message says what to change."""


def check_feasible(spec: CreatorSpec) -> None:
    """Cross-field checks that need quantity arithmetic; raises ``ImpossibleSpecError``."""
    if spec.isolation != "dedicated":
        return
    res = spec.runtime.resources
    for what, per_pod, total in (
        ("cpu", res.cpu_limit, spec.plan.cpu),
        ("memory", res.memory_limit, spec.plan.memory),
    ):
        need = parse_quantity(per_pod) * spec.runtime.replicas
        if need > parse_quantity(total):
            raise ImpossibleSpecError(
                f"runtime.replicas ({spec.runtime.replicas}) x runtime.resources {what} limit "
                f"({per_pod}) exceeds plan.{what} ({total}): the quota could never admit the "
                f"dedicated runtime; raise plan.{what} or lower the replicas or the limit"
            )


_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": 10**-9,
    "u": 10**-6,
    "m": 10**-3,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity as a number (``500m`` -> 0.5, ``1Gi`` -> 1073741824)."""
    text = text.strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(text)
