"""Drift: compare what the builders say with what the cluster holds, as pure functions.

Live objects come from children.Children, fed by watches (no API calls per check). A live
object matches when every field the builder sets has the same value live; fields the
apiserver or other controllers add are ignored. Quantities compare by value
(``1000m`` == ``1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coachops_operator.builders import Manifest, parse_quantity


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str) and isinstance(have, str):
        try:
            return parse_quantity(want) == parse_quantity(have)
        except ValueError:
            return False
    if isinstance(want, int | float) and isinstance(have, str):
        return str(want) == have
    return False


def contains(want: Any, have: Any) -> bool:
    """True when ``have`` holds everything ``want`` says (recursively)."""
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return False
        return all(k in have and contains(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(contains(w, h) for w, h in zip(want, have, strict=True))
    return _same_scalar(want, have)


def comparable(manifest: Manifest, *, autoscaled: bool) -> Manifest:
    """The part of a desired manifest the drift check compares."""
    out = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    meta = manifest.get("metadata", {})
    out["metadata"] = {k: meta[k] for k in ("labels", "ownerReferences") if k in meta}
    if manifest.get("kind") == "Secret":
        # Values are never compared (nor kept in memory); only that every key is there.
        out["data"] = {k: ... for k in manifest.get("data", {})}
    if autoscaled and manifest.get("kind") == "Deployment":
        # The autoscaler owns a running Deployment's replicas.
        spec = dict(out.get("spec", {}))
        spec.pop("replicas", None)
        out["spec"] = spec
    return out


# Status fields the operator reads (the rest of a status is not kept in memory).
_STATUS_KEPT = {
    "Namespace": ("phase",),
    "ResourceQuota": ("hard", "used"),
    "Deployment": ("availableReplicas", "replicas", "readyReplicas"),
}


def _union(a: Any, b: Any) -> Any:
    """The shape of two list items at once: every key either has, recursively."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        merged = dict(a)
        for key, value in b.items():
            merged[key] = _union(merged[key], value) if key in merged else value
        return merged
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return a


def _prune(live: Any, shape: Any) -> Any:
    """Keep of ``live`` only the keys ``shape`` (a manifest the builders make) has."""
    if isinstance(shape, Mapping) and isinstance(live, Mapping):
        if not shape:  # e.g. podSelector: {} -- keep whatever is there, it is small
            return dict(live)
        return {k: _prune(v, shape[k]) for k, v in live.items() if k in shape}
    if isinstance(shape, list) and isinstance(live, list) and shape:
        # List items may differ in shape (env entries, egress rules, selectors with
        # different labels): prune each live item by the union of them all.
        template = shape[0]
        for item in shape[1:]:
            template = _union(template, item)
        return [_prune(item, template) for item in live]
    return live


def projection(body: Mapping[str, Any], shape: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the index keeps of a live object: the fields the builders set (when ``shape``
    is given), the status the operator reads, no secret values and no bookkeeping."""
    meta = body.get("metadata", {})
    kind = str(body.get("kind", ""))
    out: dict[str, Any] = {
        k: v
        for k, v in body.items()
        if k not in ("metadata", "apiVersion", "kind", "data", "status")
    }
    if shape is not None:
        out = {k: _prune(v, shape[k]) for k, v in out.items() if k in shape}
    status = body.get("status") or {}
    kept = {k: status[k] for k in _STATUS_KEPT.get(kind, ()) if k in status}
    if kept:
        out["status"] = kept
    out["metadata"] = {
        "labels": dict(meta.get("labels") or {}),
        "ownerReferences": list(meta.get("ownerReferences") or []),
        "deleting": bool(meta.get("deletionTimestamp")),
    }
    if "data" in body:
        out["data"] = {k: ... for k in (body.get("data") or {})}
    return out


def differs(desired: Manifest, live: Mapping[str, Any] | None, *, autoscaled: bool) -> str | None:
    """Why the live object does not match (None when it does)."""
    if live is None:
        return "missing"
    if live.get("metadata", {}).get("deleting"):
        return "being deleted"
    want = comparable(desired, autoscaled=autoscaled)
    if desired.get("kind") == "Secret":
        have_keys = set((live.get("data") or {}).keys())
        missing = set(want.get("data", {})) - have_keys
        if missing:
            return "keys missing"
        want = {k: v for k, v in want.items() if k != "data"}
    if not contains(want, live):
        return "edited"
    return None
