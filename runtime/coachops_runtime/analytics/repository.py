"""Aggregations over the tenant's messages (the messages_program_day index serves them).

A day whose messages the retention purge deleted is answered from ``message_days``, the
figures the purge stored for it with ``DAILY_FIGURES`` before deleting anything of that day.
The figures of erased end users (``erased_activity``, kept by the erasure with the same
query before it deletes their messages) are added to every day's, so an erasure does not
change the past.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from coachops_runtime.kit.db import Session

# The figures of stored messages per program and UTC day; ``{where}`` selects messages
# ``m``. The retention purge keeps the same figures (retention/repository.py).
DAILY_FIGURES = """
    WITH m AS (
      SELECT m.program_id, m.end_user_id, m.direction, m.author, m.prompt_tokens,
             m.completion_tokens, (m.created_at AT TIME ZONE 'UTC')::date AS day,
             m.kind = 'check_in' AS check_in,
             m.kind = 'check_in' AND EXISTS (
               SELECT 1 FROM messages r
               WHERE r.conversation_id = m.conversation_id AND r.direction = 'in'
                 AND r.created_at > m.created_at
                 AND r.created_at <= m.created_at + interval '24 hours'
             ) AS answered
      FROM messages m
      WHERE {where}
    )
    SELECT program_id, day,
           count(*) FILTER (WHERE direction = 'in') AS messages_in,
           count(*) FILTER (WHERE direction = 'out') AS messages_out,
           count(DISTINCT end_user_id) FILTER (WHERE direction = 'in') AS active_users,
           count(*) FILTER (WHERE check_in) AS check_ins_sent,
           count(*) FILTER (WHERE answered) AS check_ins_answered,
           count(*) FILTER (WHERE author = 'ai') AS ai_replies,
           coalesce(sum(prompt_tokens) FILTER (WHERE author = 'ai'), 0) AS prompt_tokens,
           coalesce(sum(completion_tokens) FILTER (WHERE author = 'ai'), 0)
             AS completion_tokens
    FROM m GROUP BY program_id, day
    """
_PROGRAM = "(CAST($3 AS uuid) IS NULL OR {0}program_id = CAST($3 AS uuid))"
_RAW = DAILY_FIGURES.format(
    where="m.created_at >= CAST($1 AS date) AND m.created_at < CAST($2 AS date) + 1"
    f" AND {_PROGRAM.format('m.')}"
)
_DAILY = f"""
    WITH raw AS ({_RAW}),
    kept AS (
      SELECT program_id, day, messages_in, messages_out, active_users, check_ins_sent,
             check_ins_answered, ai_replies, prompt_tokens, completion_tokens
      FROM message_days
      WHERE day >= CAST($1 AS date) AND day <= CAST($2 AS date) AND {_PROGRAM.format("")}
    ), erased AS (
      SELECT program_id, day, messages_in, messages_out, active_users, check_ins_sent,
             check_ins_answered, ai_replies, prompt_tokens, completion_tokens
      FROM erased_activity
      WHERE day >= CAST($1 AS date) AND day <= CAST($2 AS date) AND {_PROGRAM.format("")}
    ), figures AS (
      SELECT * FROM raw
      WHERE NOT EXISTS (SELECT FROM kept WHERE kept.program_id = raw.program_id
                                            AND kept.day = raw.day)
      UNION ALL SELECT * FROM kept
      UNION ALL SELECT * FROM erased
    )
    SELECT program_id, day, sum(messages_in)::bigint AS messages_in,
           sum(messages_out)::bigint AS messages_out,
           sum(active_users)::bigint AS active_users,
           sum(check_ins_sent)::bigint AS check_ins_sent,
           sum(check_ins_answered)::bigint AS check_ins_answered,
           sum(ai_replies)::bigint AS ai_replies,
           sum(prompt_tokens)::bigint AS prompt_tokens,
           sum(completion_tokens)::bigint AS completion_tokens
    FROM figures GROUP BY program_id, day
    ORDER BY day, program_id
    """


class AnalyticsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    async def daily(self, start: date, stop: date, program_id: uuid.UUID | None) -> list[Any]:
        return await self.session.all(_DAILY, start, stop, program_id)
