"""Aggregations over the tenant's messages (the messages_program_day index serves them)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from coachops_runtime.kit.db import Session

_DAILY = """
    WITH m AS (
      SELECT m.program_id, m.end_user_id, m.direction,
             (m.created_at AT TIME ZONE 'UTC')::date AS day,
             m.kind = 'check_in' AS check_in,
             m.kind = 'check_in' AND EXISTS (
               SELECT 1 FROM messages r
               WHERE r.conversation_id = m.conversation_id AND r.direction = 'in'
                 AND r.created_at > m.created_at
                 AND r.created_at <= m.created_at + interval '24 hours'
             ) AS answered
      FROM messages m
      WHERE m.created_at >= CAST($1 AS date)
        AND m.created_at < CAST($2 AS date) + 1
        AND (CAST($3 AS uuid) IS NULL OR m.program_id = CAST($3 AS uuid))
    )
    SELECT program_id, day,
           count(*) FILTER (WHERE direction = 'in') AS messages_in,
           count(*) FILTER (WHERE direction = 'out') AS messages_out,
           count(DISTINCT end_user_id) FILTER (WHERE direction = 'in') AS active_users,
           count(*) FILTER (WHERE check_in) AS check_ins_sent,
           count(*) FILTER (WHERE answered) AS check_ins_answered
    FROM m GROUP BY program_id, day ORDER BY day, program_id
    """


class AnalyticsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def daily(self, start: date, stop: date, program_id: uuid.UUID | None) -> list[Any]:
        return await self.session.all(_DAILY, start, stop, program_id)
