"""The phase the runtime reports for a CoachingProgram, from its metadata and status."""

from __future__ import annotations

from typing import Any

import pytest

from coachops_runtime.programs.service import status_of


def _object(generation: int, status: dict[str, Any] | None, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation, **metadata}, "status": status}


def _ready(value: str) -> dict[str, Any]:
    return {"type": "Ready", "status": value, "reason": "Why", "message": "because"}


@pytest.mark.parametrize(
    ("obj", "phase"),
    [
        (_object(1, None), "Pending"),  # never reconciled
        (_object(2, {"observedGeneration": 1, "conditions": [_ready("True")]}), "Pending"),
        (_object(2, {"observedGeneration": 2, "conditions": []}), "Pending"),
        (_object(2, {"observedGeneration": 2, "conditions": [_ready("True")]}), "Ready"),
        (_object(2, {"observedGeneration": 2, "conditions": [_ready("False")]}), "NotReady"),
        (_object(2, {"observedGeneration": 2, "conditions": [_ready("Unknown")]}), "NotReady"),
        (
            _object(
                2,
                {"observedGeneration": 2, "conditions": [_ready("True")]},
                deletionTimestamp="2026-01-01T00:00:00Z",
            ),
            "Deleting",
        ),
    ],
)
def test_phase(obj: dict[str, Any], phase: str) -> None:
    assert status_of(obj).phase == phase


def test_conditions_are_reported_as_the_operator_wrote_them() -> None:
    status = status_of(
        _object(3, {"observedGeneration": 3, "conditions": [_ready("False"), {"type": "X"}]})
    )
    assert (status.generation, status.observed_generation) == (3, 3)
    assert [(c.type, c.status, c.reason, c.message) for c in status.conditions] == [
        ("Ready", "False", "Why", "because"),
        ("X", "Unknown", "", ""),
    ]
