"""Proactive queries, under the schedule's tenant (the scheduler binds it after the claim,
a request is bound to its caller). Times are parameters from the engine's clock."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from coachops_runtime.kit.db import Session
from coachops_runtime.proactive.writes import SendKey, Writes

# SECURITY DEFINER (migration 0010): a batch of due schedules of any tenant, locked (SKIP
# LOCKED) until the transaction ends.
CLAIM = "SELECT creator_id, schedule_id FROM claim_proactive($1, $2)"

# ``time_zone`` is the effective zone: the end user's, else the program's
# ``spec.proactive.timeZone``, else UTC (timing.zone_of reads an unknown name as UTC).
_CONTEXT = """
SELECT s.schedule_id, s.program_id, s.end_user_id, s.kind, s.item, s.due_at, s.occurrence,
       s.occurrence_key, s.basis, s.deferred, s.send_now, s.last_occurrence, s.last_key,
       p.spec, p.deleted_at IS NOT NULL AS program_deleted, c.suspended,
       n.status AS enrolment, n.enrolled_at, u.display_name,
       coalesce(u.time_zone, p.spec->'proactive'->>'timeZone', 'UTC') AS time_zone,
       g.title AS goal_title, g.target_date, g.status AS goal_status,
       coalesce(i.channel, 'web') AS channel, i.last_inbound_at,
       k.granted, v.conversation_id, coalesce(v.ai_paused, false) AS ai_paused
FROM proactive_schedules s
JOIN programs p ON p.program_id = s.program_id
JOIN creators c ON c.creator_id = s.creator_id
JOIN end_users u ON u.end_user_id = s.end_user_id
LEFT JOIN enrolments n ON n.end_user_id = s.end_user_id AND n.program_id = s.program_id
LEFT JOIN goals g ON g.goal_id = (CASE WHEN s.kind = 'goal' THEN s.item::uuid END)
LEFT JOIN LATERAL (
  SELECT x.channel, x.last_inbound_at FROM channel_identities x
  WHERE x.program_id = s.program_id AND x.end_user_id = s.end_user_id
  ORDER BY x.last_inbound_at DESC LIMIT 1
) i ON true
LEFT JOIN consents k ON k.end_user_id = s.end_user_id AND k.channel = coalesce(i.channel, 'web')
LEFT JOIN conversations v ON v.program_id = s.program_id AND v.end_user_id = s.end_user_id
  AND v.channel = coalesce(i.channel, 'web')
WHERE s.schedule_id = ANY($1::bigint[])
"""
# The scheduler skips a schedule a request holds (it stays due for the next claim); a
# request waits for the scheduler. Neither waits for the other while holding what the
# other needs, so they cannot deadlock.
CONTEXT_SKIP_LOCKED = _CONTEXT + " FOR UPDATE OF s SKIP LOCKED"
CONTEXT_WAIT = _CONTEXT + " FOR UPDATE OF s"

_LAST_INBOUND = """
SELECT max(m.created_at) FROM conversations v
CROSS JOIN LATERAL (
  SELECT created_at FROM messages m
  WHERE m.creator_id = v.creator_id AND m.conversation_id = v.conversation_id
    AND m.direction = 'in'
  ORDER BY m.message_id DESC LIMIT 1
) m
WHERE v.program_id = $1 AND v.end_user_id = $2
"""
_SEND_NOW = """
UPDATE proactive_schedules SET send_now = true, due_at = $2 WHERE schedule_id = $1
RETURNING schedule_id
"""
_LOCK_END_USERS = "SELECT proactive_lock_end_users($1::uuid[], $2::uuid[])"
# After the end user's lock, in a statement of its own (a snapshot that sees what a
# concurrent scheduler committed before it released the lock).
_SEND_CHECK = """
SELECT EXISTS (
         SELECT FROM proactive_decisions
         WHERE program_id = $1 AND end_user_id = $2 AND kind = $3 AND item = $4
           AND occurrence_key = $5 AND outcome = 'sent') AS already_sent,
       (SELECT count(*) FROM proactive_decisions
        WHERE end_user_id = $2 AND program_id = $1 AND local_day = $6
          AND outcome = 'sent') AS sent_today
"""
# The same for a batch's schedules at once (``prefetch_send_checks``), before handling.
_SENT_SO_FAR = """
SELECT t.program_id, t.end_user_id, t.kind, t.item, t.occurrence_key, t.local_day,
       EXISTS (
         SELECT FROM proactive_decisions d
         WHERE d.program_id = t.program_id AND d.end_user_id = t.end_user_id
           AND d.kind = t.kind AND d.item = t.item AND d.occurrence_key = t.occurrence_key
           AND d.outcome = 'sent') AS already_sent,
       (SELECT count(*) FROM proactive_decisions d
        WHERE d.end_user_id = t.end_user_id AND d.program_id = t.program_id
          AND d.local_day = t.local_day AND d.outcome = 'sent') AS sent_today
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::date[])
     AS t(program_id, end_user_id, kind, item, occurrence_key, local_day)
"""
_SUMMARY = "SELECT summary FROM conversation_memory WHERE conversation_id = $1"


class ProactiveRepository:
    """Reads under the tenant, and the writes of the schedules handled (``writes``),
    which ``flush`` sends."""

    def __init__(self, session: Session, creator_id: uuid.UUID) -> None:
        self.session = session
        self.creator_id = creator_id
        self.writes = Writes(creator_id)
        self.sent_so_far: dict[SendKey, tuple[bool, int]] = {}

    async def flush(self) -> None:
        await self.writes.flush(self.session)

    async def context(self, ids: list[int], *, wait: bool = False) -> list[Any]:
        return await self.session.all(CONTEXT_WAIT if wait else CONTEXT_SKIP_LOCKED, ids)

    async def last_inbound(self, program_id: uuid.UUID, end_user_id: uuid.UUID) -> Any:
        return await self.session.scalar(_LAST_INBOUND, program_id, end_user_id)

    async def send_now(self, schedule_id: int, now: datetime) -> bool:
        return await self.session.scalar(_SEND_NOW, schedule_id, now) is not None

    async def lock_end_users(self, rows: list[Any]) -> None:
        """Lock the end users of ``rows`` (per program) until the transaction ends."""
        programs = [row["program_id"] for row in rows]
        await self.session.execute(_LOCK_END_USERS, programs, [r["end_user_id"] for r in rows])

    async def prefetch_send_checks(self, keys: list[SendKey]) -> None:
        """Answer the send checks of ``keys`` in one statement, for ``send_check`` to use
        (after the end users' lock, like the check itself). Only for one pass that
        flushes at its end: the answers do not see a flush."""
        found = await self.session.all(_SENT_SO_FAR, *[[k[i] for k in keys] for i in range(6)])
        self.sent_so_far = {tuple(r[:6]): (r["already_sent"], r["sent_today"]) for r in found}

    async def send_check(self, row: Any, key: str, day: date) -> tuple[bool, int]:
        """Whether this occurrence's key was sent, and how many were sent on ``day``,
        counting the sends gathered and not flushed yet."""
        program_id, end_user_id = row["program_id"], row["end_user_id"]
        asked: SendKey = (program_id, end_user_id, row["kind"], row["item"], key, day)
        answer = self.sent_so_far.get(asked)
        if answer is None:
            found: Any = await self.session.one_or_none(_SEND_CHECK, *asked)
            answer = (bool(found["already_sent"]), int(found["sent_today"]))
        already, today = self.writes.sent(asked)
        return answer[0] or already, answer[1] + today

    async def summary(self, conversation_id: uuid.UUID | None) -> str:
        if conversation_id is None:
            return ""
        found = await self.session.scalar(_SUMMARY, conversation_id)
        return str(found or "")


_SCHEDULES = """
SELECT s.schedule_id, s.program_id, s.end_user_id, s.kind, s.item, s.occurrence,
       CASE WHEN s.due_at = '-infinity' THEN NULL ELSE s.due_at END AS due_at,
       s.deferred, s.send_now,
       coalesce(u.time_zone, p.spec->'proactive'->>'timeZone', 'UTC') AS time_zone
FROM proactive_schedules s JOIN end_users u ON u.end_user_id = s.end_user_id
JOIN programs p ON p.program_id = s.program_id
"""
_UPCOMING = (
    _SCHEDULES
    + "WHERE ($1::uuid IS NULL OR s.program_id = $1) AND ($2::uuid IS NULL OR s.end_user_id = $2)"
    " ORDER BY s.due_at, s.schedule_id LIMIT $3"
)
_ONE = _SCHEDULES + "WHERE s.schedule_id = $1"
_DECISIONS = """
SELECT decision_id, program_id, end_user_id, schedule_id, kind, item, occurrence,
       occurrence_key, outcome, reason, channel, message_id, local_day, decided_at
FROM proactive_decisions
WHERE ($1::uuid IS NULL OR program_id = $1) AND ($2::uuid IS NULL OR end_user_id = $2)
  AND ($3::text IS NULL OR outcome = $3)
ORDER BY decided_at DESC, decision_id DESC LIMIT $4
"""


class CreatorQueries:
    """The creator API's reads (RLS keeps them to the caller's tenant)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def upcoming(
        self, program_id: uuid.UUID | None, end_user_id: uuid.UUID | None, limit: int
    ) -> list[Any]:
        return await self.session.all(_UPCOMING, program_id, end_user_id, limit)

    async def one(self, schedule_id: int) -> Any | None:
        return await self.session.one_or_none(_ONE, schedule_id)

    async def decisions(
        self,
        program_id: uuid.UUID | None,
        end_user_id: uuid.UUID | None,
        outcome: str | None,
        limit: int,
    ) -> list[Any]:
        return await self.session.all(_DECISIONS, program_id, end_user_id, outcome, limit)
