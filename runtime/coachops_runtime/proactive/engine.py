"""What happens to one claimed schedule: plan its occurrence, or meet it with the rules
and send, defer or skip it, then plan the next one. Every step is a write gathered in the
repository's ``writes`` and flushed in the claiming transaction, so a scheduler that dies
leaves the schedule as it was and the next claim starts again; a send is the message row
(whose trigger queues the channel delivery) and a decision row with the send's
idempotency key, committed together with the schedule's advance, so it happens once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from coachops_runtime.proactive.config import ProactiveConfig
from coachops_runtime.proactive.content import ContentWriter
from coachops_runtime.proactive.repository import ProactiveRepository
from coachops_runtime.proactive.rules import Facts, decide
from coachops_runtime.proactive.settings import ProactiveSettings
from coachops_runtime.proactive.targets import (
    CheckInTarget,
    GoalTarget,
    NudgeTarget,
    Occurrence,
    Target,
)
from coachops_runtime.proactive.timing import local_date, zone_of
from coachops_runtime.proactive.writes import Decision, Send

log = logging.getLogger("coachops.worker.proactive")

# A re-planned schedule (its program or the end user's zone changed) still fires an
# occurrence that fell due this recently and was not handled.
REPLAN_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Planned:
    target: Target
    occurrence: Occurrence | None


class Engine:
    def __init__(self, settings: ProactiveSettings, writer: ContentWriter | None) -> None:
        self.settings = settings
        self.writer = writer
        self.stale_after = timedelta(hours=settings.stale_after_hours)
        self.recheck = timedelta(hours=settings.nudge_recheck_hours)

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()

    # ------------------------------------------------------------------ targets

    async def target(self, repo: ProactiveRepository, row: Any) -> Target | None:
        """What the row stands for under the program's current spec; None when it is gone
        (check-in removed, nudges off, goal closed or without a date, program deleted)."""
        if row["program_deleted"] or row["enrolment"] in (None, "left"):
            return None
        config = ProactiveConfig.from_spec(row["spec"])
        zone = zone_of(row["time_zone"])
        kind = row["kind"]
        if kind == "check_in":
            check_in = config.check_ins.get(row["item"])
            return None if check_in is None else CheckInTarget(check_in, zone)
        if kind == "nudge":
            if config.nudge_hours <= 0:
                return None
            last = await repo.last_inbound(row["program_id"], row["end_user_id"])
            start: datetime = max(x for x in (last, row["enrolled_at"]) if x is not None)
            return NudgeTarget(config.nudge_hours, start, row["last_key"])
        if row["goal_status"] != "active" or row["target_date"] is None:
            return None
        return GoalTarget(row["goal_title"], row["target_date"], zone)

    def _replan_after(self, row: Any, now: datetime) -> datetime:
        last: datetime | None = row["last_occurrence"]
        return now if last is None else max(last, now - REPLAN_GRACE)

    def _plan(
        self, repo: ProactiveRepository, row: Any, target: Target, now: datetime
    ) -> Occurrence | None:
        """The pending occurrence, planned anew when there is none or its basis changed."""
        if row["occurrence"] is not None and row["basis"] == target.basis():
            kept = Occurrence(row["occurrence"], row["occurrence_key"])
            if not row["send_now"] and row["due_at"] < kept.at:
                # Woken early by a trigger (-infinity) with nothing changed: back to its
                # time (a deferral's due time lies after its occurrence and stays).
                repo.writes.plan(row, kept.at, kept.key, kept.at, target.basis())
            return kept
        occurrence = target.next(self._replan_after(row, now))
        if occurrence is None:
            repo.writes.plan(row, None, None, now + self.recheck, target.basis())
        else:
            repo.writes.plan(row, occurrence.at, occurrence.key, occurrence.at, target.basis())
        return occurrence

    def _advance(
        self,
        repo: ProactiveRepository,
        row: Any,
        target: Target,
        done: Occurrence,
        now: datetime,
    ) -> None:
        """Plan the occurrence after ``done``; occurrences more than ``stale_after`` behind
        (the scheduler was not running) are passed over."""
        following = target.next(max(done.at, now - self.stale_after))
        if isinstance(target, NudgeTarget):
            following = None  # one per silence: the next is planned when it ends
        if following is None and isinstance(target, GoalTarget):
            repo.writes.delete(row)
            return
        due = now + self.recheck if following is None else following.at
        repo.writes.advance(
            row,
            None if following is None else following.at,
            None if following is None else following.key,
            due,
            target.basis(),
            done.at,
            done.key,
        )

    # ------------------------------------------------------------------ one schedule

    async def handle(self, repo: ProactiveRepository, row: Any, now: datetime) -> str:
        """Plan or meet one claimed schedule; returns what happened (for logs and counts)."""
        target = await self.target(repo, row)
        zone = zone_of(row["time_zone"])
        if target is None:
            if row["enrolment"] in (None, "left") and row["occurrence"] is not None:
                self._record(repo, row, _pending(row), "skipped", "unenrolled", now)
            repo.writes.delete(row)
            return "removed"
        occurrence = self._plan(repo, row, target, now)
        if occurrence is None or (occurrence.at > now and not row["send_now"]):
            return "planned"
        due_at: datetime = row["due_at"] if row["occurrence"] is not None else occurrence.at
        config = ProactiveConfig.from_spec(row["spec"])
        verdict = decide(
            Facts(
                now=now,
                due_at=max(due_at, occurrence.at),
                send_now=row["send_now"],
                suspended=row["suspended"],
                enrolment=row["enrolment"],
                conversation_paused=row["ai_paused"],
                channel=row["channel"],
                consent=row["granted"],
                last_inbound_at=row["last_inbound_at"],
                whatsapp_template=config.whatsapp_template,
                zone=zone,
                quiet_start=config.quiet_start,
                quiet_end=config.quiet_end,
                stale_after=self.stale_after,
            )
        )
        if verdict.outcome == "deferred" and verdict.until is not None:
            if not row["deferred"]:
                self._record(repo, row, occurrence, "deferred", verdict.reason, now)
            repo.writes.defer(row, verdict.until)
            return "deferred"
        if verdict.outcome == "skipped":
            self._record(repo, row, occurrence, "skipped", verdict.reason, now)
            self._advance(repo, row, target, occurrence, now)
            return verdict.reason
        # The caller holds the end user's lock (scheduler.py), so two schedulers cannot
        # both pass maxPerDay; this statement's snapshot is taken after it.
        reason = verdict.reason
        already, today = await repo.send_check(row, occurrence.key, local_date(now, zone))
        if already:
            reason = "already_sent"
        elif not row["send_now"] and today >= config.max_per_day:
            reason = "max_per_day"
        if reason in ("already_sent", "max_per_day"):
            self._record(repo, row, occurrence, "skipped", reason, now)
            self._advance(repo, row, target, occurrence, now)
            return reason
        await self._send(repo, row, target, occurrence, reason, now)
        self._advance(repo, row, target, occurrence, now)
        return "sent"

    async def _send(
        self,
        repo: ProactiveRepository,
        row: Any,
        target: Target,
        occurrence: Occurrence,
        reason: str,
        now: datetime,
    ) -> None:
        if self.writer is None:
            text = target.template(occurrence, row["display_name"])
        else:
            text = (await self.writer.write(repo, row, target, occurrence, now)).text
        decision = _decision(row, occurrence, "sent", reason, now)
        repo.writes.send(Send(decision, row["conversation_id"], target.message_kind, text))
        log.info(
            "proactive message sent",
            extra={
                "schedule_id": row["schedule_id"],
                "kind": row["kind"],
                "channel": row["channel"],
            },
        )

    def _record(
        self,
        repo: ProactiveRepository,
        row: Any,
        occurrence: Occurrence | None,
        outcome: str,
        reason: str,
        now: datetime,
    ) -> None:
        repo.writes.decide(_decision(row, occurrence, outcome, reason, now))

    # ------------------------------------------------------------------ the creator's

    async def upcoming(
        self, repo: ProactiveRepository, row: Any, now: datetime
    ) -> Occurrence | None:
        """The schedule's next occurrence, planned if need be; None when it has none (its
        item is gone, or a nudge waits for a new silence)."""
        target = await self.target(repo, row)
        return None if target is None else self._plan(repo, row, target, now)

    async def skip(self, repo: ProactiveRepository, row: Any, now: datetime) -> bool:
        """Skip the schedule's next occurrence (recorded as ``creator_skipped``); False when
        it has none."""
        target = await self.target(repo, row)
        if target is None:
            return False
        occurrence = self._plan(repo, row, target, now)
        if occurrence is None:
            return False
        self._record(repo, row, occurrence, "skipped", "creator_skipped", now)
        self._advance(repo, row, target, occurrence, now)
        return True


def _decision(
    row: Any, occurrence: Occurrence | None, outcome: str, reason: str, now: datetime
) -> Decision:
    return Decision(
        program_id=row["program_id"],
        end_user_id=row["end_user_id"],
        schedule_id=row["schedule_id"],
        kind=row["kind"],
        item=row["item"],
        occurrence=None if occurrence is None else occurrence.at,
        occurrence_key="" if occurrence is None else occurrence.key,
        outcome=outcome,
        reason=reason,
        channel=row["channel"],
        local_day=local_date(now, zone_of(row["time_zone"])),
        decided_at=now,
    )


def _pending(row: Any) -> Occurrence:
    return Occurrence(row["occurrence"], row["occurrence_key"] or "")
