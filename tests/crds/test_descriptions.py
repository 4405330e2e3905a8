"""The CRD descriptions (what ``kubectl explain`` prints) agree with the code.

A field whose behaviour is planned says "planned" and is listed in
``coachops_crds.planned``; every other field describes what the operator or the runtime
does with it. Static analysis checks what it can: nothing in the operator or the runtime
reads a planned spec field, nothing in the operator writes a planned status field, and
every other field is read (spec) or written (status) somewhere.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from coachops_crds import constants as c
from coachops_crds.planned import PARTLY_PLANNED, PLANNED, is_planned
from coachops_crds.schema import creator_crd, program_crd

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator" / "coachops_operator"
RUNTIME = ROOT / "runtime" / "coachops_runtime"
KINDS = {c.CREATOR_KIND: creator_crd, c.PROGRAM_KIND: program_crd}
PLANNED_WORD = re.compile(r"\bplanned\b", re.IGNORECASE)
SQL_JSON_KEY = re.compile(r"->>?\s*'(\w+)'")

# Fields that only label the object and claim no behaviour.
DESCRIPTIVE = {(c.CREATOR_KIND, "spec.contact.name")}
# Written by kopf itself, not by the operator's code.
FRAMEWORK = {"status.kopf"}


@dataclass(frozen=True)
class Node:
    path: str  # as ``kubectl explain`` takes it after the kind
    description: str
    items: bool = False  # the description of an array's items, not of the array


def fields(kind: str) -> Iterator[Node]:
    """Every spec and status field of ``kind``, with its description(s), depth first."""
    root = KINDS[kind]()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def walk(schema: dict[str, Any], path: str) -> Iterator[Node]:
        yield Node(path, schema.get("description", ""))
        items = schema.get("items", {})
        if "description" in items:  # an array's items share its path
            yield Node(path, items["description"], items=True)
        nested = items if "properties" in items else schema
        for name, sub in nested.get("properties", {}).items():
            yield from walk(sub, f"{path}.{name}")

    for part in ("spec", "status"):
        for node in walk(root["properties"][part], part):
            if node.path != part:
                yield node


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class Usage:
    """What a package's code reads and writes, as static analysis sees it."""

    attributes: set[str] = field(default_factory=set)  # x.<name>
    pairs: set[tuple[str, str]] = field(default_factory=set)  # <parent>.<name>
    read_keys: set[str] = field(default_factory=set)  # x["<key>"], x.get("<key>")
    written_keys: set[str] = field(default_factory=set)  # {"<key>": ...}, x["<key>"] = ...


@cache
def usage(package: Path) -> Usage:
    found = Usage()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        # ``for source in spec.knowledge``: ``source.name`` reads ``knowledge.name``.
        items = {
            loop.target.id: loop.iter.attr
            for loop in ast.walk(tree)
            if isinstance(loop, ast.For | ast.AsyncFor | ast.comprehension)
            and isinstance(loop.target, ast.Name)
            and isinstance(loop.iter, ast.Attribute)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                found.attributes.add(node.attr)
                parent = node.value
                if isinstance(parent, ast.Attribute):
                    found.pairs.add((parent.attr, node.attr))
                elif isinstance(parent, ast.Name):
                    found.pairs.add((parent.id, node.attr))
                    if parent.id in items:
                        found.pairs.add((items[parent.id], node.attr))
            elif isinstance(node, ast.Dict):
                found.written_keys |= {
                    k.value
                    for k in node.keys
                    if isinstance(k, ast.Constant) and type(k.value) is str
                }
            elif isinstance(node, ast.Subscript):
                if isinstance(node.slice, ast.Constant) and type(node.slice.value) is str:
                    stored = isinstance(node.ctx, ast.Store)
                    (found.written_keys if stored else found.read_keys).add(node.slice.value)
            elif isinstance(node, ast.Constant) and type(node.value) is str:
                # SQL that reads the spec column: spec -> 'limits' ->> 'messagesPerUserPerDay'
                found.read_keys |= set(SQL_JSON_KEY.findall(node.value))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"get", "pop", "setdefault"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and type(node.args[0].value) is str
            ):
                found.read_keys.add(node.args[0].value)
    return found


def read_by_code(node: Node) -> bool:
    """Whether the operator or the runtime reads this spec field."""
    segments = node.path.split(".")
    leaf, parent = snake(segments[-1]), snake(segments[-2])
    for package in (OPERATOR, RUNTIME):
        found = usage(package)
        # Multi-word names and top-level fields are distinctive enough on their own;
        # one-word names inside objects count only under their parent's name.
        if ("_" in leaf or parent == "spec") and leaf in found.attributes:
            return True
        if (parent, leaf) in found.pairs:
            return True
    # Some code reads the raw object or the spec column's JSON rather than the model.
    distinctive = "_" in leaf or parent == "spec"
    return distinctive and any(segments[-1] in usage(p).read_keys for p in (OPERATOR, RUNTIME))


def written_by_operator(node: Node) -> bool:
    return node.path.split(".")[-1] in usage(OPERATOR).written_keys


ALL = [(kind, node) for kind in KINDS for node in fields(kind)]


def _id(case: tuple[str, Node]) -> str:
    return f"{case[0]}.{case[1].path}"


def test_the_registry_names_fields_that_exist() -> None:
    for registry in (PLANNED, PARTLY_PLANNED):
        for kind, paths in registry.items():
            known = {node.path for node in fields(kind)}
            assert paths <= known, f"{kind}: no such field {sorted(paths - known)}"


@pytest.mark.parametrize("case", ALL, ids=_id)
def test_a_description_says_planned_exactly_when_the_registry_does(case: tuple[str, Node]) -> None:
    kind, node = case
    says = bool(PLANNED_WORD.search(node.description))
    if node.items and node.path in PARTLY_PLANNED.get(kind, ()):
        return  # the array's own description says which part is planned
    if is_planned(kind, node.path):
        assert says, f"{kind} {node.path} is planned; say so: {node.description!r}"
    else:
        assert not says, (
            f"{kind} {node.path} says planned but coachops_crds.planned does not list it: "
            f"{node.description!r}"
        )


SPEC = [case for case in ALL if case[1].path.startswith("spec.")]
STATUS = [case for case in ALL if case[1].path.startswith("status.")]


@pytest.mark.parametrize("case", SPEC, ids=_id)
def test_spec_fields_are_read_exactly_when_not_planned(case: tuple[str, Node]) -> None:
    kind, node = case
    if (kind, node.path) in DESCRIPTIVE or node.path in PARTLY_PLANNED.get(kind, ()):
        return  # a partly planned field's description says which part acts today
    planned_only = any(
        node.path == root or node.path.startswith(root + ".") for root in PLANNED.get(kind, ())
    )
    if planned_only:
        assert not read_by_code(node), (
            f"the code reads {kind} {node.path} now: update its description and "
            "coachops_crds.planned"
        )
    else:
        assert read_by_code(node), (
            f"nothing reads {kind} {node.path}, yet its description claims behaviour: "
            f"{node.description!r}"
        )


@pytest.mark.parametrize("case", STATUS, ids=_id)
def test_status_fields_are_written_exactly_when_not_planned(case: tuple[str, Node]) -> None:
    kind, node = case
    if any(node.path == f or node.path.startswith(f + ".") for f in FRAMEWORK):
        return
    if node.path in PARTLY_PLANNED.get(kind, ()):
        assert written_by_operator(node), f"the operator never writes {kind} {node.path}"
        return  # its description says which part is planned
    if is_planned(kind, node.path):
        assert not written_by_operator(node), (
            f"the operator writes {kind} {node.path} now: update its description and "
            "coachops_crds.planned"
        )
    else:
        assert written_by_operator(node), f"the operator never writes {kind} {node.path}"


def test_the_checks_can_fail() -> None:
    """The static checks see a read, a pair and a write where there is one."""
    operator = usage(OPERATOR)
    assert "max_replicas" in operator.attributes  # spec.runtime.max_replicas
    assert ("plan", "max_programs") in operator.pairs
    assert "tenantId" in operator.written_keys  # status.tenantId
    assert "reclaimPolicy" in operator.read_keys  # spec.reclaimPolicy, read from the raw body
    assert not read_by_code(Node("spec.proactive.notReadAnywhere", ""))
    # Read only in SQL, from the spec column's JSON.
    assert read_by_code(Node("spec.limits.messagesPerUserPerDay", ""))
    assert read_by_code(Node("spec.plan.maxPrograms", ""))
    assert read_by_code(Node("spec.runtime.replicas", ""))
    assert not written_by_operator(Node("status.notWrittenAnywhere", ""))
