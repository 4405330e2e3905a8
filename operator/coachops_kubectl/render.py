"""Tables for ``status`` and ``describe`` (rich renders them; plain text when piped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from coachops_kubectl import conditions as cond
from coachops_kubectl.cluster import creator_of

READY_STYLE = {"True": "green", "False": "red"}


def _ready(status: str) -> Text:
    return Text(status, style=READY_STYLE.get(status, "yellow"))


def status_table(
    creators: Sequence[Mapping[str, Any]], programs: Sequence[Mapping[str, Any]]
) -> Table:
    """One row per Creator, its programs under it; programs in a namespace no Creator
    owns come last under the namespace's name."""
    table = Table(title="coachops tenants and programs", title_justify="left", expand=False)
    for column in ("CREATOR", "PROGRAM", "READY", "CONDITIONS", "PROBLEM"):
        table.add_column(column, overflow="fold")
    by_creator: dict[str, list[Mapping[str, Any]]] = {}
    for program in programs:
        by_creator.setdefault(creator_of(program["metadata"]["namespace"]), []).append(program)
    names = [str(item["metadata"]["name"]) for item in creators]
    for creator in creators:
        name = str(creator["metadata"]["name"])
        conditions = cond.of(creator)
        table.add_row(
            name,
            "",
            _ready(cond.ready(creator)),
            cond.summary(conditions),
            cond.problem(conditions),
        )
        for program in by_creator.get(name, []):
            _program_row(table, name, program)
    for owner in sorted(set(by_creator) - set(names)):
        for program in by_creator[owner]:
            _program_row(table, f"({owner})", program)
    return table


def _program_row(table: Table, creator: str, program: Mapping[str, Any]) -> None:
    conditions = cond.of(program)
    table.add_row(
        creator,
        str(program["metadata"]["name"]),
        _ready(cond.ready(program)),
        cond.summary(conditions),
        cond.problem(conditions),
    )


STORES = (
    ("PostgreSQL", "DatabaseReady", "database", ("role", "secretName")),
    ("Redis", "CacheReady", "cache", ("keyPrefix", "user")),
    ("ChromaDB", "VectorStoreReady", "vectorStore", ("tenant", "database")),
)


def describe(
    creator: Mapping[str, Any],
    programs: Sequence[Mapping[str, Any]],
    owned: Sequence[Mapping[str, Any]],
) -> Group:
    """Everything one tenant has: the Creator, its stores' health as the operator reports
    it, its programs and every object in its namespace (Secrets by name only)."""
    spec: Mapping[str, Any] = creator.get("spec") or {}
    status: Mapping[str, Any] = creator.get("status") or {}
    conditions = cond.of(creator)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    rows = {
        "Creator": str(creator["metadata"]["name"]),
        "Display name": str(spec.get("displayName", "")),
        "Namespace": str(status.get("namespace", "")),
        "Tenant id": str(status.get("tenantId", "")),
        "Isolation": str(spec.get("isolation", "shared")),
        "Suspended": str(bool(status.get("suspended", False))).lower(),
        "Ready": cond.ready(creator),
    }
    for key, value in rows.items():
        head.add_row(key, value)

    conditions_table = _table("Conditions", "TYPE", "STATUS", "REASON", "MESSAGE")
    for item in conditions:
        conditions_table.add_row(
            str(item.get("type")),
            _ready(str(item.get("status"))),
            str(item.get("reason", "")),
            str(item.get("message", "")),
        )

    stores = _table("Stores", "STORE", "HEALTH", "WHERE", "MESSAGE")
    for label, type_, key, fields in STORES:
        found = cond.find(conditions, type_)
        where = status.get(key) or {}
        stores.add_row(
            label,
            _ready(str(found.get("status") or "Unknown")),
            ", ".join(f"{field}={where.get(field)}" for field in fields if where.get(field)),
            str(found.get("message", "")),
        )
    runtime = cond.find(conditions, "RuntimeReady")
    stores.add_row(
        "Runtime",
        _ready(str(runtime.get("status") or "Unknown")),
        str(spec.get("isolation", "shared")),
        str(runtime.get("message", "")),
    )

    program_table = _table(
        "CoachingPrograms", "NAME", "READY", "MODEL", "PULL", "CHUNKS", "PROBLEM"
    )
    for program in programs:
        pstatus = program.get("status") or {}
        model = (program.get("spec") or {}).get("model") or {}
        program_table.add_row(
            str(program["metadata"]["name"]),
            _ready(cond.ready(program)),
            str(model.get("chat", "")),
            f"{pstatus.get('modelPullPercent', 0)}%",
            str(pstatus.get("knowledgeChunks", 0)),
            cond.problem(cond.of(program)),
        )

    objects = _table("Kubernetes objects", "KIND", "NAME", "DETAIL")
    for obj in owned:
        objects.add_row(str(obj.get("kind")), str(obj["metadata"]["name"]), detail(obj))
    return Group(head, conditions_table, stores, program_table, objects)


def detail(item: Mapping[str, Any]) -> str:
    """One short fact per object: a Deployment's ready replicas, a Secret's type (never
    its data), a namespace's phase."""
    kind = item.get("kind")
    status: Mapping[str, Any] = item.get("status") or {}
    if kind == "Deployment":
        wanted = (item.get("spec") or {}).get("replicas", 1)
        return f"{status.get('readyReplicas', 0)}/{wanted} ready"
    if kind == "Secret":
        return f"type {item.get('type', 'Opaque')}"
    if kind == "Namespace":
        return str(status.get("phase", ""))
    return ""


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
