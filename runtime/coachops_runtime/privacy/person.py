"""Where one end user's rows live in PostgreSQL: one entry per table, read by the export
and removed by the erasure, so both always cover the same tables.

Each ``where`` is a predicate with ``$1`` the end user's id, evaluated under the tenant's
row-level security. Tables without an ``end_user_id`` column reach the person through
their conversations or their e-mail address. ``tests/privacy`` fails when a table with an
``end_user_id`` column exists that no entry names, so a new store cannot be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass

_OWN = "end_user_id = $1"
_CONVERSATIONS = (
    "conversation_id IN (SELECT conversation_id FROM conversations WHERE end_user_id = $1)"
)
# E-mails about the person: those sent to them, and those naming them or one of their
# conversations (the invitation's payload, a safety alert to the creator).
_EMAILS = (
    "to_address = (SELECT lower(email) FROM end_users WHERE end_user_id = $1)"
    " OR to_address = (SELECT email FROM end_users WHERE end_user_id = $1)"
    " OR payload->>'end_user_id' = $1::text"
    " OR payload->>'conversation_id' IN"
    " (SELECT conversation_id::text FROM conversations WHERE end_user_id = $1)"
)


@dataclass(frozen=True)
class PersonTable:
    """A table holding rows about a person."""

    table: str
    where: str
    order: str  # a stable order for the export
    # Columns never exported: secrets' hashes, the archives themselves, the prompts (the
    # creator's persona and knowledge, logged for debugging, whose personal parts are the
    # messages exported anyway).
    hidden: tuple[str, ...] = ()
    export: bool = True
    # Removed by the foreign keys' cascade when the end user's (or conversation's) row
    # goes, because the runtime may not delete from it (append-only, or no grant needed).
    cascade: bool = False


# Export order; the erasure removes them in its own order (erasure.py).
PERSON_TABLES: tuple[PersonTable, ...] = (
    PersonTable("end_users", _OWN, "end_user_id"),
    PersonTable("enrolments", _OWN, "program_id"),
    PersonTable("consents", _OWN, "channel"),
    PersonTable("consent_events", _OWN, "event_id", cascade=True),
    PersonTable("channel_identities", _OWN, "program_id, channel"),
    PersonTable("conversations", _OWN, "created_at, conversation_id"),
    PersonTable("messages", _CONVERSATIONS, "message_id"),
    PersonTable("conversation_memory", _CONVERSATIONS, "conversation_id"),
    PersonTable("email_threads", _CONVERSATIONS, "conversation_id", cascade=True),
    PersonTable("goals", _OWN, "created_at, goal_id"),
    PersonTable("safety_events", _OWN, "created_at, event_id"),
    PersonTable("proactive_schedules", _OWN, "schedule_id"),
    PersonTable("proactive_decisions", _OWN, "decision_id"),
    PersonTable("reply_jobs", _OWN, "created_at, job_id", hidden=("prompt",)),
    PersonTable("channel_outbox", _OWN, "delivery_id"),
    PersonTable("email_outbox", _EMAILS, "created_at, email_id", hidden=("payload",)),
    PersonTable("action_tokens", _OWN, "created_at, token_id", hidden=("token_hash",)),
    PersonTable(
        "export_jobs",
        _OWN,
        "created_at, export_id",
        hidden=("archive", "link_hash"),
        export=False,
    ),
)

BY_NAME = {entry.table: entry for entry in PERSON_TABLES}

# Tables with an end_user_id column that hold no data about the person to export or
# erase: the erasure job itself (deleted when it ends).
NOT_PERSONAL = frozenset({"erasure_jobs"})
