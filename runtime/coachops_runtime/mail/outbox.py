"""The outbox poller: delivers due ``email_outbox`` rows, retries with backoff, gives up.

Each e-mail is one transaction: claim it (skipping e-mails other workers hold), bind its
tenant, render, send, record the outcome, commit. Holding the claim while sending means
no two workers send one e-mail; an e-mail sent by a worker that dies before committing is
sent again (at least once; both copies carry the same Message-ID).

Logs name the e-mail, template and outcome, never the body, the token or the link.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, Protocol

import asyncpg

from coachops_runtime.kit.metrics import EMAILS
from coachops_runtime.kit.settings import Settings
from coachops_runtime.mail.message import build_message
from coachops_runtime.mail.repository import OutboxRepository
from coachops_runtime.mail.smtp import DeliveryError, SmtpSender
from coachops_runtime.mail.templates import TemplateError, render

log = logging.getLogger("coachops.worker.mail")


class Sender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def backoff_seconds(
    attempts: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Delay after ``attempts`` failed tries: doubling from ``base`` up to ``cap``, of which
    the upper half is random, so e-mails that failed together do not retry together."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts, 1) - 1, 32))
    return ceiling / 2 + rand() * ceiling / 2


class OutboxPoller:
    name = "email-outbox"

    def __init__(self, settings: Settings, pool: asyncpg.Pool, sender: Sender | None = None):
        self.settings = settings
        self.pool = pool
        self.sender: Sender = sender or SmtpSender(settings)

    async def poll(self) -> int:
        """Deliver due e-mails, up to ``mail_concurrency`` at once after the first; returns
        how many were handled (sent, rescheduled or given up)."""
        # One claim first: an idle worker costs one short transaction per poll, not one
        # per lane.
        if not await self.deliver_one():
            return 0
        outcomes = await asyncio.gather(
            *(self.deliver_one() for _ in range(self.settings.mail_concurrency)),
            return_exceptions=True,  # no delivery is left running when one fails
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return 1 + sum(1 for outcome in outcomes if outcome)

    async def deliver_one(self) -> bool:
        """Claim and handle one due e-mail; False when none is due."""
        async with self.pool.acquire() as connection, connection.transaction():
            repo = OutboxRepository(connection)
            claimed = await repo.claim()
            if claimed is None:
                return False
            creator_id, email_id = claimed
            await repo.bind_tenant(creator_id)
            row = await repo.lock(email_id)
            if row is not None:  # None: sent or deleted since it was listed as due
                await self._deliver(repo, row)
            return True

    async def _deliver(self, repo: OutboxRepository, row: Any) -> None:
        email_id: uuid.UUID = row["email_id"]
        attempts = row["attempts"] + 1
        fields = {"email_id": str(email_id), "template": row["template"], "attempts": attempts}
        try:
            rendered = render(row["template"], row["payload"], self.settings.public_base_url)
            message = build_message(email_id, self.settings.mail_from, row["to_address"], rendered)
        except TemplateError as error:
            await repo.give_up(email_id, str(error))
            EMAILS.labels("dead").inc()
            log.error("e-mail cannot be rendered, given up", extra={**fields, "error": str(error)})
            return
        try:
            await self.sender.send(message)
        except DeliveryError as error:
            if error.final or attempts >= self.settings.mail_max_attempts:
                await repo.give_up(email_id, error.reason)
                EMAILS.labels("dead").inc()
                log.error("e-mail given up", extra={**fields, "error": error.reason})
                return
            delay = backoff_seconds(
                attempts,
                self.settings.mail_retry_base_seconds,
                self.settings.mail_retry_max_seconds,
            )
            await repo.retry_later(email_id, error.reason, delay)
            EMAILS.labels("retry").inc()
            log.warning(
                "e-mail not delivered, will retry",
                extra={**fields, "retry_in_seconds": round(delay, 1), "error": error.reason},
            )
            return
        await repo.mark_sent(email_id)
        EMAILS.labels("sent").inc()
        log.info("e-mail sent", extra=fields)
