"""What the code exports to Prometheus, and the metrics a PromQL expression reads.

The exported names come from the real registries after importing every module of the
operator and the runtime (each metric registers itself at import): the operator's own
registry and prometheus_client's default one, which the runtime and the worker serve.
Expressions are parsed by promql-parser (the Rust promql-parser crate that GreptimeDB
uses), so a typo in PromQL fails to parse instead of passing a tokenizer.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
import promql_parser
import pytest

# Labels Prometheus adds to every series it scrapes (the Prometheus Operator's monitors
# add the Kubernetes ones); any expression may name them.
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
)
# Grafana's variables, as Grafana substitutes them before Prometheus sees the query.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


# The operator's kopf handlers read its settings at import; placeholders let them import
# (nothing connects anywhere).
IMPORT_SETTINGS = {
    "COACHOPS_OPERATOR_DATABASE_URL": "postgresql://import-only@127.0.0.1:9/none",
    "COACHOPS_OPERATOR_REDIS_URL": "redis://127.0.0.1:9/0",
    "COACHOPS_OPERATOR_CHROMA_URL": "http://127.0.0.1:9",
}


def import_everything() -> None:
    """Import each module of the operator and the runtime (not ``__main__``s, which run,
    nor the Alembic migrations, which need Alembic's context)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in IMPORT_SETTINGS.items():
            patch.setenv(key, value)
        for package_name in ("coachops_operator", "coachops_runtime"):
            package = importlib.import_module(package_name)
            for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
                if module.name.endswith("__main__") or ".migrations" in module.name:
                    continue
                importlib.import_module(module.name)


SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def exported() -> dict[str, frozenset[str]]:
    """Every sample name the processes can export (a counter as ``_total``, a histogram as
    ``_bucket``, ``_count`` and ``_sum``, as the text format writes them), with its labels."""
    import_everything()
    from coachops_operator import metrics as operator_metrics

    found: dict[str, frozenset[str]] = {}
    for registry in (operator_metrics.REGISTRY, prometheus_client.REGISTRY):
        # The registry's own table of collectors (public collect() would lose which
        # collector declared which labels of a metric no code path has touched yet).
        table: dict[str, Any] = registry._names_to_collectors
        for collector in set(table.values()):
            for family in collector.collect():
                labels = set(getattr(collector, "_labelnames", ()))
                for sample in family.samples:
                    labels |= set(sample.labels) - {"le", "quantile"}
                for suffix in SUFFIXES.get(family.type, ("",)):
                    extra = {"le"} if suffix == "_bucket" else set()
                    found[family.name + suffix] = frozenset(labels | extra)
    return found


@dataclass
class Reads:
    """The selectors of one expression and the labels each aggregation groups by."""

    selectors: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    groupings: list[tuple[frozenset[str], frozenset[str]]] = field(default_factory=list)


def parse(expr: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def _children(node: Any) -> Iterator[Any]:
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (int, float, str)):
            yield child
    yield from getattr(node, "args", None) or ()


def _selectors(node: Any) -> Iterator[Any]:
    if isinstance(node, promql_parser.VectorSelector):
        yield node
    for child in _children(node):
        yield from _selectors(child)


def reads(expr: str) -> Reads:
    found = Reads()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {m.name for m in node.matchers.matchers} - {"__name__"}
            found.selectors.append((str(node.name), frozenset(matchers)))
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            inner = frozenset(str(s.name) for s in _selectors(node.expr))
            found.groupings.append((frozenset(node.modifier.labels), inner))
        for child in _children(node):
            visit(child)

    visit(parse(expr))
    return found


def problems(expr: str, names: dict[str, frozenset[str]]) -> list[str]:
    """What in ``expr`` the code does not export: metrics, or labels of those metrics."""
    found: list[str] = []
    parsed = reads(expr)
    for name, matchers in parsed.selectors:
        if name not in names:
            found.append(f"{name} is not exported")
            continue
        unknown = matchers - names[name] - TARGET_LABELS
        if unknown:
            found.append(f"{name} has no label {', '.join(sorted(unknown))}")
    for labels, metrics in parsed.groupings:
        available = set(TARGET_LABELS)
        for metric in metrics:
            available |= names.get(metric, frozenset())
        unknown = labels - available
        if unknown:
            found.append(f"grouping by {', '.join(sorted(unknown))}: no such label")
    return found
