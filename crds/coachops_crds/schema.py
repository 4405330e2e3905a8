"""Generate structural CustomResourceDefinitions from the Pydantic models.

Kubernetes wants a structural OpenAPI v3 schema: no ``$ref``, no ``anyOf`` for optional
fields, a ``type`` on every node. Pydantic's JSON Schema is close; this module inlines the
references, turns ``X | None`` into an optional ``X`` and drops what the apiserver rejects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.config import JsonDict

from coachops_crds import constants as c
from coachops_crds.models import (
    CoachingProgramSpec,
    CoachingProgramStatus,
    CreatorSpec,
    CreatorStatus,
    cel,
)

_DROP = {"title", "$defs"}
CRD_DIR = Path(__file__).resolve().parent.parent


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions are not structural: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", ...) is None:
            del rest["default"]
        return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
            for name, prop in out[key].items():
                # An optional object defaults to {} so the apiserver fills in its own
                # defaults (Pydantic's default_factory leaves no default in the schema).
                # One with required fields of its own cannot be {}: it stays absent.
                if (
                    prop.get("type") == "object"
                    and "properties" in prop
                    and "default" not in prop
                    and not prop.get("required")
                    and name not in node.get("required", [])
                ):
                    prop["default"] = {}
        elif key == "format" and value == "date-time":
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = _structural(value, defs)
    if "properties" in out and out.get("additionalProperties") is False:
        # Structural schemas prune unknown fields already; the two keywords are exclusive.
        del out["additionalProperties"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("additionalProperties") is True:  # dict[str, Any]: whatever is put there
        del out["additionalProperties"]
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model, as the apiserver accepts it."""
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    defs = raw.get("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    return schema


def _condition_column(name: str, condition: str) -> dict[str, str]:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].status',
    }


_HEADER = "# Generated from crds/coachops_crds by `python -m coachops_crds`. Do not edit.\n"
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(
    *,
    kind: str,
    plural: str,
    short_names: tuple[str, ...],
    scope: str,
    description: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    rules: list[JsonDict],
) -> dict[str, Any]:
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": openapi_schema(spec),
            "status": openapi_schema(status),
        },
    }
    if rules:
        root["x-kubernetes-validations"] = rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{c.GROUP}"},
        "spec": {
            "group": c.GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(short_names),
                "categories": [c.CATEGORY],
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [*columns, _AGE],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def creator_crd() -> dict[str, Any]:
    return _crd(
        kind=c.CREATOR_KIND,
        plural=c.CREATOR_PLURAL,
        short_names=c.CREATOR_SHORT_NAMES,
        scope="Cluster",
        description=(
            "A creator is a coachops tenant: it gets a namespace, a database role bound to "
            "its rows, Redis and vector-store space and, if dedicated, runtime objects of its "
            "own."
        ),
        spec=CreatorSpec,
        status=CreatorStatus,
        columns=[
            _condition_column("Ready", "Ready"),
            {"name": "Plan", "type": "string", "jsonPath": ".spec.plan.name"},
            {"name": "Isolation", "type": "string", "jsonPath": ".spec.isolation"},
            {"name": "Namespace", "type": "string", "jsonPath": ".status.namespace"},
            {"name": "Programs", "type": "integer", "jsonPath": ".status.programs"},
            {
                "name": "Suspended",
                "type": "boolean",
                "jsonPath": ".spec.suspended",
                "priority": 1,
            },
            {
                "name": "Reason",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
                "priority": 1,
            },
        ],
        rules=[
            cel(
                "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$')",
                "metadata.name must be a DNS label of at most 40 characters "
                "(lowercase letters, digits and '-'), because it names the tenant namespace",
            ),
        ],
    )


def program_crd() -> dict[str, Any]:
    return _crd(
        kind=c.PROGRAM_KIND,
        plural=c.PROGRAM_PLURAL,
        short_names=c.PROGRAM_SHORT_NAMES,
        scope="Namespaced",
        description=(
            "An AI coaching program owned by the creator whose namespace holds it: persona, "
            "models, knowledge, channels and proactive outreach. The operator copies it into "
            "the tenant's database, pulls its models, checks its channels and schedules, and "
            "sets Ready when every part is; each field says what acts on it today."
        ),
        spec=CoachingProgramSpec,
        status=CoachingProgramStatus,
        columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.chat"},
            {"name": "Pull %", "type": "integer", "jsonPath": ".status.modelPullPercent"},
            {"name": "Chunks", "type": "integer", "jsonPath": ".status.knowledgeChunks"},
            _condition_column("Ready", "Ready"),
            {
                "name": "Channels",
                "type": "integer",
                "jsonPath": ".status.channels",
                "priority": 1,
            },
        ],
        rules=[
            cel(
                "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')",
                "metadata.name must be a DNS label (lowercase letters, digits and '-')",
            ),
        ],
    )


FINALIZER_POLICY_FILE = f"{c.GROUP}_finalizer-policy.yaml"


def finalizer_policy() -> list[dict[str, Any]]:
    """A MutatingAdmissionPolicy (and its binding) that gives every Creator and
    CoachingProgram the operator's finalizer when it is created.

    The operator adds a missing finalizer itself, but that costs a PATCH of the object and
    one more watch event for kopf and every other watcher, before its first reconcile can
    start (the Creator's writes went from 2 PATCHes to 1). Objects that already carry it are
    left alone; other finalizers are kept. ``failurePolicy: Ignore``: if the policy cannot
    run, the object is admitted as it is and the operator adds the finalizer.
    """
    name = "coachops-finalizer"
    finalizer = c.FINALIZER
    has_list = "has(object.metadata.finalizers)"
    add_one = f'JSONPatch{{op: "add", path: "/metadata/finalizers/-", value: "{finalizer}"}}'
    add_list = f'JSONPatch{{op: "add", path: "/metadata/finalizers", value: ["{finalizer}"]}}'
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [c.GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": [c.CREATOR_PLURAL, c.PROGRAM_PLURAL],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "finalizer-missing",
                    "expression": f'!{has_list} || !("{finalizer}" in object.metadata.finalizers)',
                }
            ],
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "Never",
            "mutations": [
                {
                    "patchType": "JSONPatch",
                    "jsonPatch": {"expression": f"{has_list} ? [{add_one}] : [{add_list}]"},
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name},
    }
    return [policy, binding]


def rendered_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD, as committed in crds/."""
    return {
        f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml": _HEADER
        + yaml.safe_dump(crd, sort_keys=False, width=100)
        for crd in (creator_crd(), program_crd())
    }


def rendered() -> dict[str, str]:
    """File name -> YAML text of everything committed in crds/: the CRDs and the
    finalizer policy."""
    policy = _HEADER + yaml.safe_dump_all(finalizer_policy(), sort_keys=False, width=100)
    return {**rendered_crds(), FINALIZER_POLICY_FILE: policy}


def write(directory: Path = CRD_DIR) -> list[Path]:
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
