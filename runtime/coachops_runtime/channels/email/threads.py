"""The e-mail thread of a conversation (``email_threads``, migration 0013): what the next
reply's ``In-Reply-To``, ``References`` and subject are made of."""

from __future__ import annotations

import uuid

from coachops_runtime.channels.adapter import Thread
from coachops_runtime.conversations.repository import ConversationRepository
from coachops_runtime.kit.db import Session

# The subject stays the thread's first; the latest mail and its chain replace the last.
_RECORD = """
INSERT INTO email_threads (conversation_id, creator_id, subject, last_message_id, refs)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (conversation_id) DO UPDATE SET
    subject = CASE WHEN email_threads.subject = '' THEN EXCLUDED.subject
                   ELSE email_threads.subject END,
    last_message_id = EXCLUDED.last_message_id, refs = EXCLUDED.refs, updated_at = now()
"""


async def record(
    session: Session,
    creator_id: uuid.UUID,
    program_id: uuid.UUID,
    end_user_id: uuid.UUID,
    thread: Thread,
) -> None:
    """Remember the end user's latest mail in their e-mail conversation (made if new)."""
    conversation = await ConversationRepository(session).find_or_create(
        creator_id, program_id, end_user_id, "email"
    )
    await session.execute(
        _RECORD,
        conversation["conversation_id"],
        creator_id,
        thread.subject[:500],
        thread.message_id,
        list(thread.references),
    )
