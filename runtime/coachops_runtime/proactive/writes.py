"""The writes of the schedules handled under one tenant, gathered while the engine decides
and sent by ``flush`` in a few set-based statements (one per table and kind of change)
instead of several statements per schedule: the statements' own cost, on both sides of
the connection, was most of a check-in's.

The schedules' rows are locked (``FOR UPDATE``) from the read to the end of the
transaction, so the state kept here is theirs: each update writes every column the
engine may change, from the row as read plus the changes decided since.

A send is the message (its trigger queues the channel delivery), the conversation's
touch and the ``sent`` decision, keyed to each other by the conversation: sends are
written in rounds in which no conversation appears twice, so the message ids returned by
the insert pair with their decisions without trusting the order of ``RETURNING``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from coachops_runtime.kit.db import Session

_DELETE = "DELETE FROM proactive_schedules WHERE schedule_id = ANY($1::bigint[])"
_UPDATE = """
UPDATE proactive_schedules s
SET occurrence = u.occurrence, occurrence_key = u.occurrence_key, due_at = u.due_at,
    basis = u.basis, deferred = u.deferred, send_now = u.send_now,
    last_occurrence = u.last_occurrence, last_key = u.last_key
FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::timestamptz[], $5::text[],
            $6::boolean[], $7::boolean[], $8::timestamptz[], $9::text[])
     AS u(schedule_id, occurrence, occurrence_key, due_at, basis, deferred, send_now,
          last_occurrence, last_key)
WHERE s.schedule_id = u.schedule_id
"""
_OPEN_CONVERSATIONS = """
INSERT INTO conversations (creator_id, program_id, end_user_id, channel, created_at,
    last_message_at)
SELECT $1, t.program_id, t.end_user_id, t.channel, t.at, t.at
FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[])
     AS t(program_id, end_user_id, channel, at)
ON CONFLICT (program_id, end_user_id, channel) DO UPDATE SET channel = EXCLUDED.channel
RETURNING program_id, end_user_id, channel, conversation_id
"""
_DECISION_COLUMNS = """
    creator_id, program_id, end_user_id, schedule_id, kind, item, occurrence,
    occurrence_key, outcome, reason, channel, message_id, local_day, decided_at"""
_DECISIONS = f"""
INSERT INTO proactive_decisions ({_DECISION_COLUMNS})
SELECT $1, d.program_id, d.end_user_id, d.schedule_id, d.kind, d.item, d.occurrence,
       d.occurrence_key, d.outcome, d.reason, d.channel, NULL, d.local_day, d.decided_at
FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[],
            $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::date[],
            $13::timestamptz[])
     AS d(program_id, end_user_id, schedule_id, kind, item, occurrence, occurrence_key,
          outcome, reason, channel, local_day, decided_at)
"""
# One round of sends: no conversation twice (see the module's docstring).
_SENDS = f"""
WITH d AS (
  SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[],
                       $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::text[],
                       $12::date[], $13::timestamptz[], $14::text[], $15::text[])
    AS d(conversation_id, program_id, end_user_id, schedule_id, kind, item, occurrence,
         occurrence_key, reason, channel, local_day, decided_at, message_kind, body)
), touch AS (
  UPDATE conversations v SET last_message_at = greatest(v.last_message_at, d.decided_at)
  FROM d WHERE v.conversation_id = d.conversation_id
), m AS (
  INSERT INTO messages (creator_id, conversation_id, program_id, end_user_id, direction,
      author, kind, body, created_at)
  SELECT $1, d.conversation_id, d.program_id, d.end_user_id, 'out', 'ai', d.message_kind,
         d.body, d.decided_at
  FROM d
  RETURNING message_id, conversation_id
)
INSERT INTO proactive_decisions ({_DECISION_COLUMNS})
SELECT $1, d.program_id, d.end_user_id, d.schedule_id, d.kind, d.item, d.occurrence,
       d.occurrence_key, 'sent', d.reason, d.channel, m.message_id, d.local_day, d.decided_at
FROM d JOIN m ON m.conversation_id = d.conversation_id
"""


# (program, end user, kind, item, occurrence key, local day): what a send check asks.
SendKey = tuple[uuid.UUID, uuid.UUID, str, str, str, date]


@dataclass(frozen=True)
class ScheduleState:
    """The columns of a schedule the engine changes."""

    occurrence: datetime | None
    occurrence_key: str | None
    due_at: datetime
    basis: str
    deferred: bool
    send_now: bool
    last_occurrence: datetime | None
    last_key: str | None

    @classmethod
    def of(cls, row: Any) -> ScheduleState:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Decision:
    program_id: uuid.UUID
    end_user_id: uuid.UUID
    schedule_id: int
    kind: str
    item: str
    occurrence: datetime | None
    occurrence_key: str
    outcome: str
    reason: str
    channel: str
    local_day: date
    decided_at: datetime


@dataclass(frozen=True)
class Send:
    """A message to send, with its ``sent`` decision; no conversation yet means one is
    opened on the decision's channel."""

    decision: Decision
    conversation_id: uuid.UUID | None
    message_kind: str
    body: str


@dataclass
class Writes:
    creator_id: uuid.UUID
    states: dict[int, ScheduleState] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    sent_to: dict[tuple[uuid.UUID, uuid.UUID], list[Decision]] = field(default_factory=dict)

    # ------------------------------------------------------------------ gathering

    def _change(self, row: Any, **changes: Any) -> None:
        schedule_id: int = row["schedule_id"]
        state = self.states.get(schedule_id) or ScheduleState.of(row)
        self.states[schedule_id] = replace(state, **changes)

    def plan(
        self, row: Any, at: datetime | None, key: str | None, due: datetime, basis: str
    ) -> None:
        self._change(
            row, occurrence=at, occurrence_key=key, due_at=due, basis=basis, deferred=False
        )

    def advance(
        self,
        row: Any,
        at: datetime | None,
        key: str | None,
        due: datetime,
        basis: str,
        last_at: datetime,
        last_key: str,
    ) -> None:
        self._change(
            row,
            occurrence=at,
            occurrence_key=key,
            due_at=due,
            basis=basis,
            last_occurrence=last_at,
            last_key=last_key,
            deferred=False,
            send_now=False,
        )

    def defer(self, row: Any, until: datetime) -> None:
        self._change(row, due_at=until, deferred=True)

    def delete(self, row: Any) -> None:
        self.states.pop(row["schedule_id"], None)
        self.deleted.append(row["schedule_id"])

    def decide(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def send(self, send: Send) -> None:
        self.sends.append(send)
        decision = send.decision
        self.sent_to.setdefault((decision.program_id, decision.end_user_id), []).append(decision)

    def sent(self, asked: SendKey) -> tuple[bool, int]:
        """What the sends gathered here add to a send check: whether the asked key is
        among them, and how many are for its end user, program and local day."""
        program_id, end_user_id, kind, item, key, day = asked
        mine = self.sent_to.get((program_id, end_user_id), [])
        already = any((d.kind, d.item, d.occurrence_key) == (kind, item, key) for d in mine)
        return already, sum(1 for d in mine if d.local_day == day)

    def clear(self) -> None:
        self.states.clear()
        self.deleted.clear()
        self.decisions.clear()
        self.sends.clear()
        self.sent_to.clear()

    # ------------------------------------------------------------------ sending

    async def flush(self, session: Session) -> None:
        """Write what was gathered, then forget it."""
        if self.deleted:
            await session.execute(_DELETE, self.deleted)
        if self.states:
            states = [(i, *s.__dict__.values()) for i, s in self.states.items()]
            await session.execute(_UPDATE, *_columns(states, 9))
        if self.decisions:
            await session.execute(_DECISIONS, self.creator_id, *_decision_columns(self.decisions))
        if self.sends:
            await self._flush_sends(session)
        self.clear()

    async def _flush_sends(self, session: Session) -> None:
        sends = await self._with_conversations(session)
        rounds: list[list[Send]] = []
        for send in sends:
            for batch in rounds:
                if all(s.conversation_id != send.conversation_id for s in batch):
                    batch.append(send)
                    break
            else:
                rounds.append([send])
        for batch in rounds:
            decisions = _decision_columns([s.decision for s in batch])
            # The decision's outcome column is fixed ('sent') in the statement.
            del decisions[7]
            await session.execute(
                _SENDS,
                self.creator_id,
                [s.conversation_id for s in batch],
                *decisions,
                [s.message_kind for s in batch],
                [s.body for s in batch],
            )

    async def _with_conversations(self, session: Session) -> list[Send]:
        """The sends, each with its conversation (opened here when it had none)."""
        missing = {
            (s.decision.program_id, s.decision.end_user_id, s.decision.channel): s.decision
            for s in self.sends
            if s.conversation_id is None
        }
        if not missing:
            return self.sends
        keys = list(missing)
        opened = await session.all(
            _OPEN_CONVERSATIONS,
            self.creator_id,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [missing[k].decided_at for k in keys],
        )
        found = {(r[0], r[1], r[2]): r[3] for r in opened}
        return [
            s
            if s.conversation_id is not None
            else replace(
                s,
                conversation_id=found[
                    (s.decision.program_id, s.decision.end_user_id, s.decision.channel)
                ],
            )
            for s in self.sends
        ]


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to the column arrays ``unnest`` takes."""
    return [[row[i] for row in rows] for i in range(width)]


def _decision_columns(decisions: list[Decision]) -> list[list[Any]]:
    return _columns([tuple(d.__dict__.values()) for d in decisions], 12)
