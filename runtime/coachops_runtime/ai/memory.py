"""The rolling summary of a conversation, refreshed by the worker with the program's model.

After a reply is stored, when more than ``memory_turns + summary_every`` messages follow
the summary's last covered message, everything but the last ``memory_turns`` messages is
folded into the summary (the old summary plus those messages, summarized by the same
model, without streaming). The prompt then carries the summary and the last turns.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from coachops_runtime.ai import tokens
from coachops_runtime.ai.providers import ChatMessage, ChatRequest, Usage
from coachops_runtime.ai.repository import JobRepository

if TYPE_CHECKING:
    from coachops_runtime.ai.models import ProgramModel
    from coachops_runtime.ai.worker import ReplyPoller

SUMMARY_TOKENS = 200
_INSTRUCTION = (
    "Summarize this coaching conversation in a few sentences: the person's situation, "
    "what they want, what was agreed. Plain text, no preamble."
)


async def refresh_memory(
    poller: ReplyPoller, creator_id: uuid.UUID, job: Any, model: ProgramModel, name: str
) -> bool:
    """Fold old turns into the summary when enough have gathered; True when it did."""
    ai = poller.ai
    async with poller.transaction(creator_id) as session:
        repo = JobRepository(session)
        memory = await repo.memory(job["conversation_id"])
        through = memory["through_message_id"] if memory else 0
        rows = await repo.unsummarized(job["conversation_id"], through)
    if len(rows) <= ai.memory_turns + ai.summary_every:
        return False
    folded = rows[: len(rows) - ai.memory_turns]
    transcript = "\n".join(
        f"{'User' if row['author'] == 'end_user' else 'Coach'}: {row['body']}" for row in folded
    )
    previous = memory["summary"] if memory else ""
    budget = ai.context_tokens - SUMMARY_TOKENS - 100
    text = tokens.fit(
        (f"Earlier summary: {previous}\n\n" if previous else "") + transcript, budget, keep="tail"
    )
    request = ChatRequest(
        model=name,
        messages=[ChatMessage("system", _INSTRUCTION), ChatMessage("user", text)],
        temperature=0.2,
        max_tokens=SUMMARY_TOKENS,
    )
    provider = poller.providers.for_model(model)
    pieces = [piece async for piece in provider.stream(request, Usage())]
    summary = "".join(pieces).strip()
    async with poller.transaction(creator_id) as session:
        await JobRepository(session).save_memory(
            job["conversation_id"], summary, folded[-1]["message_id"]
        )
    return True
