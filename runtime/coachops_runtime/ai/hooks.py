"""Where the reply pipeline meets goals and the safety check.

``active_goals`` lists the goals that go into the prompt and ``guard`` may answer a
message instead of the model (a crisis or a blocked topic). Both are the seams for the
goals and safety modules; today no goal is listed and no message is answered here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from coachops_runtime.kit.db import Session


@dataclass(frozen=True)
class GuardOutcome:
    """The reply to send instead of generating one."""

    text: str


async def active_goals(
    session: Session, end_user_id: uuid.UUID, program_id: uuid.UUID
) -> list[str]:
    return []


async def guard(session: Session, job: Any, spec: dict[str, Any]) -> GuardOutcome | None:
    return None
