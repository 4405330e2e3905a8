"""Events posted outside a kopf handler (a model pull's start, success and failure).

kopf posts the handlers' Events itself; work that runs in the background, such as a pull
shared by many programs, posts through the operator's own client instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from coachops_operator import kube
from coachops_operator.conditions import now_rfc3339

log = logging.getLogger("coachops_operator.events")


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


async def post(api: kube.KubeClient, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
    """Post one core/v1 Event about ``ref``; a failure is logged, never raised."""
    now = now_rfc3339()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
        "involvedObject": {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "uid": ref.uid,
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "coachops-operator"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await api.request("POST", f"/api/v1/namespaces/{ref.namespace}/events", body=body)
    except kube.KUBE_ERRORS as error:
        log.warning("posting Event %s for %s/%s: %s", reason, ref.namespace, ref.name, error)
