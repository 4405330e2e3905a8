"""What the runtime answers when the Kubernetes API refuses a program write."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_runtime.kit.kube import refusal_problem


def _refusal(status: int, message: str = "spec.title: Required value") -> ApiException:
    error = ApiException(status=status)
    error.body = json.dumps({"kind": "Status", "message": message}).encode()
    return error


@pytest.mark.parametrize(
    ("status", "answer", "detail"),
    [
        (400, 400, "spec.title: Required value"),  # bad input stays a 4xx
        (422, 422, "spec.title: Required value"),
        (404, 404, "no such object"),
        (409, 409, "an object with that name exists"),
        (403, 503, "not (yet) allowed"),  # the operator has not bound the runtime yet
        (500, 503, "Kubernetes API answered 500"),
    ],
)
def test_refusals(status: int, answer: int, detail: str) -> None:
    error = refusal_problem(_refusal(status))
    assert getattr(error, "status", None) == answer
    assert detail in getattr(error, "detail", "")


def test_a_refusal_without_a_status_document_still_has_a_reason() -> None:
    error = ApiException(status=422)
    error.body = b"<html>proxy error</html>"
    assert getattr(refusal_problem(error), "detail", "") == "invalid object"
