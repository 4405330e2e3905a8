"""``pull``: follow a CoachingProgram's model pull from the status the operator writes.

The operator patches ``status.modelPullPercent`` and the ``ModelReady`` condition (its
message names bytes done of total per model) at most once a second while it pulls
(``coachops_operator/model_pulls.py``). The plugin watches the object, so each patch
reaches the bar as it is written; a watch the apiserver ends is started again from a fresh
read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from coachops_crds import constants as c
from coachops_kubectl import conditions as cond
from coachops_kubectl.errors import PluginError
from coachops_operator.kube import KubeClient, get

# ModelReady reasons that no waiting changes: the spec or the operator must change first.
REFUSED = frozenset({"ModelNotAllowed", "NoModelServer"})
WATCH_SECONDS = 60  # one watch request; then read again and watch again


@dataclass(frozen=True)
class PullState:
    """What the program's status says about its models right now."""

    percent: int
    status: str  # of ModelReady: True, False, Unknown
    reason: str
    message: str

    @classmethod
    def of(cls, program: Mapping[str, Any]) -> PullState:
        found = cond.find(cond.of(program), "ModelReady")
        return cls(
            percent=int((program.get("status") or {}).get("modelPullPercent") or 0),
            status=str(found.get("status") or "Unknown"),
            reason=str(found.get("reason") or "NotReported"),
            message=str(found.get("message") or "the operator has not reported yet"),
        )

    @property
    def done(self) -> bool:
        return self.status == "True"

    def check(self) -> None:
        """Raise when the pull cannot finish without a change to the spec or the operator."""
        if self.reason in REFUSED:
            raise PluginError(f"the models will not be pulled: {self.reason}: {self.message}")

    def line(self) -> str:
        return f"{self.percent:3d}% {self.reason}: {self.message}"


async def states(api: KubeClient, namespace: str, name: str) -> AsyncIterator[PullState]:
    """The program's pull state now and after every change, until it is deleted."""
    while True:
        program = await get(api, c.API_VERSION, c.PROGRAM_KIND, namespace, name)
        if program is None:
            raise PluginError(f"CoachingProgram {namespace}/{name} was deleted")
        yield PullState.of(program)
        query = {
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": str(program["metadata"]["resourceVersion"]),
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        path = f"/apis/{c.API_VERSION}/namespaces/{namespace}/{c.PROGRAM_PLURAL}"
        async for event in api.watch(path, query):
            kind = event.get("type")
            if kind == "DELETED":
                raise PluginError(f"CoachingProgram {namespace}/{name} was deleted")
            if kind == "MODIFIED":
                yield PullState.of(event["object"])
            elif kind == "ERROR":  # e.g. 410 Gone: the version is too old; read again
                break
