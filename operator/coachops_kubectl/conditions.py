"""Reading status conditions for display: Ready first, the first problem's reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MARKS = {"True": "✓", "False": "✗"}  # anything else (Unknown, missing) shows "?"


def of(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return [dict(item) for item in conditions if isinstance(item, Mapping)]


def find(conditions: Sequence[Mapping[str, Any]], type_: str) -> dict[str, Any]:
    return next((dict(item) for item in conditions if item.get("type") == type_), {})


def ready(obj: Mapping[str, Any]) -> str:
    """``True``, ``False`` or ``Unknown`` (also when the operator has not reported yet)."""
    return str(find(of(obj), "Ready").get("status") or "Unknown")


def summary(conditions: Sequence[Mapping[str, Any]]) -> str:
    """``NamespaceReady ✓ DatabaseReady ✗ …``: every condition but Ready, in order."""
    return " ".join(
        f"{item.get('type')} {MARKS.get(str(item.get('status')), '?')}"
        for item in conditions
        if item.get("type") != "Ready"
    )


def problem(conditions: Sequence[Mapping[str, Any]]) -> str:
    """``Reason: message`` of Ready when it is not True (the operator copies the first
    failing condition's reason there); empty when Ready."""
    found = find(conditions, "Ready")
    if not found:
        return "not reconciled yet"
    if found.get("status") == "True":
        return ""
    message = str(found.get("message") or "")
    return f"{found.get('reason')}: {message}" if message else str(found.get("reason") or "")
