"""``respond``: what happens when a message does not pass the safety check."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from coachops_runtime.ai.safety.program import ProgramSafety
from coachops_runtime.ai.safety.replies import crisis_reply, refusal
from coachops_runtime.ai.safety.repository import SafetyRepository
from coachops_runtime.ai.safety.verdict import Verdict
from coachops_runtime.kit.db import Session

log = logging.getLogger("coachops.safety")


@dataclass(frozen=True)
class SafetyReply:
    """The text to send the end user instead of an AI reply, and what was done.
    ``recorded`` is False when the message already had its event (a job run again after
    a crash): nothing was done twice."""

    text: str
    event_id: uuid.UUID
    ai_paused: bool
    alert_queued: bool
    recorded: bool


async def respond(
    session: Session,
    verdict: Verdict,
    program: ProgramSafety,
    *,
    creator_id: uuid.UUID,
    program_id: uuid.UUID,
    end_user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    message_id: int,
) -> SafetyReply:
    """For a crisis: the resources reply, the AI paused in the conversation and an alert
    queued for ``spec.safety.escalationEmail`` (when set); for a blocked topic: a polite
    refusal. Either way one ``safety_events`` row for the message. ``session`` must be
    bound to ``creator_id``'s tenant; the caller commits."""
    if verdict.ok:
        raise ValueError("respond() is for verdicts that did not pass")
    crisis = verdict.kind == "crisis"
    escalation = program.safety.escalation_email if crisis else ""
    if crisis:
        text = crisis_reply(program.language, program.safety)
    else:
        text = refusal(program.language, verdict.topic or "")
    repo = SafetyRepository(session)
    row = await repo.record(
        creator_id,
        {
            "program_id": program_id,
            "end_user_id": end_user_id,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "kind": verdict.kind,
            "category": verdict.category,
            "topic": verdict.topic,
            "layer": verdict.layer or "pattern",
            "score": verdict.score,
            "ai_paused": crisis,
            "alert_queued": bool(escalation),
        },
    )
    if row is None:
        existing = await repo.by_message(message_id)
        if existing is None:  # pragma: no cover - the conflict guarantees a row
            raise RuntimeError("safety event vanished")
        return SafetyReply(
            text, existing["event_id"], existing["ai_paused"], existing["alert_queued"], False
        )
    if crisis:
        await repo.pause(conversation_id)
    if escalation:
        payload = {
            "event_id": str(row["event_id"]),
            "conversation_id": str(conversation_id),
            "program": program.program_name,
            "category": verdict.category,
        }
        await repo.queue_alert(creator_id, escalation, json.dumps(payload))
    log.info(
        "safety event recorded",
        extra={
            "event_id": str(row["event_id"]),
            "kind": verdict.kind,
            "category": verdict.category,
            "layer": verdict.layer,
            "alert_queued": bool(escalation),
        },
    )
    return SafetyReply(text, row["event_id"], crisis, bool(escalation), True)
