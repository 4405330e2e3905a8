"""Where the reply pipeline meets goals and the safety check.

``active_goals`` renders the end user's active goals (``goals.repository``) as prompt
lines; ``check_safety`` runs the layered check (``ai.safety.assess``) on the inbound
message, and ``answer_safety`` records a verdict that did not pass and returns the text
sent instead of an AI reply (``ai.safety.respond``: resources or a refusal; for a crisis
the AI is paused and the creator alerted).
"""

from __future__ import annotations

import uuid
from typing import Any

from coachops_runtime.ai.safety import ProgramSafety, SafetyReply, Verdict, assess, respond
from coachops_runtime.ai.safety.similarity import Embeds
from coachops_runtime.goals.repository import active_goals as goals_of
from coachops_runtime.kit.db import Session

MAX_GOALS = 10


async def active_goals(
    session: Session, end_user_id: uuid.UUID, program_id: uuid.UUID
) -> list[str]:
    lines = []
    for goal in await goals_of(session, end_user_id, program_id, limit=MAX_GOALS):
        line = goal.title
        if goal.target_date is not None:
            line += f" (by {goal.target_date.isoformat()})"
        if goal.details:
            line += f": {goal.details}"
        lines.append(line)
    return lines


async def check_safety(job: Any, spec: dict[str, Any], embedder: Embeds) -> Verdict:
    return await assess(
        job["message"], ProgramSafety.from_spec(job["program_name"], spec), embedder
    )


async def answer_safety(
    session: Session, verdict: Verdict, job: Any, spec: dict[str, Any]
) -> SafetyReply:
    return await respond(
        session,
        verdict,
        ProgramSafety.from_spec(job["program_name"], spec),
        creator_id=job["creator_id"],
        program_id=job["program_id"],
        end_user_id=job["end_user_id"],
        conversation_id=job["conversation_id"],
        message_id=job["message_id"],
    )
