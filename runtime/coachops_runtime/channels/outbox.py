"""The channel outbox poller: delivers due ``channel_outbox`` rows to the providers.

Each delivery is one transaction: claim it (one conversation's deliveries leave in order;
deliveries other workers hold are skipped), bind its tenant, read it with its tenant's
credentials, the end user's address and consent, send its parts, record the outcome,
commit. A long text is split at the channel's limit and ``parts_sent`` remembers how far
a failed attempt got, so a retry does not send a part twice. Failures are retried with
exponential backoff and jitter, never sooner than a 429's ``Retry-After``; a final error
or ``max_attempts`` failures leave the delivery dead, listed by the creator API, which
can queue it again. A worker that dies after the provider accepted a part but before
committing sends that part again (at least once).

Logs name the delivery, channel and outcome, never the text, address or credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from pydantic import BaseModel, ValidationError

from coachops_crds.models import ChannelSpec
from coachops_runtime.channels.adapter import (
    About,
    Adapter,
    DeliveryError,
    Outgoing,
    Template,
    Thread,
)
from coachops_runtime.channels.credentials import CredentialsUnreadableError, decrypt
from coachops_runtime.channels.deliveries import DeliveryRepository
from coachops_runtime.channels.registry import adapters
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.channels.splitting import split
from coachops_runtime.kit.metrics import CHANNEL_DELIVERIES
from coachops_runtime.kit.settings import Settings
from coachops_runtime.mail.outbox import backoff_seconds
from coachops_runtime.worker.wake import WakeUps

log = logging.getLogger("coachops.worker.channels")

WAKE_CHANNEL = "coachops_channel_due"
TEMPLATE_TEXT_LIMIT = 1024  # a template body parameter
MAX_RETRY_AFTER = 86_400.0


class _StoppedError(Exception):
    """Ends a delivery early with a state other than sent."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


class _Channels(BaseModel):
    """The channels of a stored program spec, read with the CRD's own model."""

    channels: list[ChannelSpec] = []


def _template(spec: Any, channel: str) -> Template | None:
    if isinstance(spec, str):
        spec = json.loads(spec)
    try:
        wired = _Channels.model_validate({"channels": (spec or {}).get("channels") or []})
    except ValidationError:
        return None  # a spec the CRD would refuse names no usable template
    for entry in wired.channels:
        if entry.type == channel and entry.template is not None:
            return Template(entry.template.name, entry.template.language)
    return None


def _about(row: Any) -> About:
    thread = None
    if row["thread_last"] is not None:
        thread = Thread(row["thread_last"], tuple(row["thread_refs"]), row["thread_subject"])
    return About(
        row["delivery_id"], row["program_id"], row["end_user_id"], row["program_title"], thread
    )


class ChannelPoller:
    name = "channel-outbox"

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, channels: ChannelSettings | None = None
    ) -> None:
        self.settings = settings
        self.channels = channels or ChannelSettings()
        self.adapters: dict[str, Adapter] = adapters(self.channels, settings)
        self.pool = pool
        self.wake_ups = WakeUps(settings, WAKE_CHANNEL, "deliveries")
        self.wake = self.wake_ups.event
        self._http: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.channels.send_timeout_seconds),
                connector=aiohttp.TCPConnector(limit=4 * self.channels.concurrency),
            )
        return self._http

    async def close(self) -> None:
        await self.wake_ups.close()
        if self._http is not None:
            await self._http.close()

    async def poll(self) -> int:
        """Deliver until nothing is due, ``concurrency`` at once after the first; returns
        how many deliveries were handled."""
        await self.wake_ups.listen()
        self.wake.clear()
        if not await self.deliver_one():
            return 0
        counts = await asyncio.gather(
            *(self._lane() for _ in range(self.channels.concurrency)), return_exceptions=True
        )
        for count in counts:
            if isinstance(count, BaseException):
                raise count
        return 1 + sum(c for c in counts if isinstance(c, int))

    async def _lane(self) -> int:
        handled = 0
        while await self.deliver_one():
            handled += 1
        return handled

    async def deliver_one(self) -> bool:
        """Claim and handle one due delivery; False when none is due."""
        async with self.pool.acquire() as connection, connection.transaction():
            repo = DeliveryRepository(connection)
            claimed = await repo.claim()
            if claimed is None:
                return False
            creator_id, delivery_id = claimed
            await repo.bind_tenant(creator_id)
            row = await repo.lock(delivery_id)
            if row is not None:  # None: handled or deleted since it was listed as due
                await self._deliver(repo, row)
            return True

    async def _deliver(self, repo: DeliveryRepository, row: Any) -> None:
        delivery_id: int = row["delivery_id"]
        fields = {"delivery_id": delivery_id, "channel": row["channel"]}
        parts_sent: int = row["parts_sent"]
        ids: list[str] = list(row["provider_ids"])
        attempts = row["attempts"] + 1
        try:
            adapter, outgoing_parts, credentials = self._prepare(row)
            for index in range(parts_sent, len(outgoing_parts)):
                ids.append(await self._send(adapter, credentials, outgoing_parts[index]))
                parts_sent = index + 1
        except _StoppedError as outcome:
            if outcome.state == "suppressed":
                await repo.suppress(delivery_id, outcome.reason)
            else:
                await repo.dead(delivery_id, parts_sent, ids, outcome.reason)
            CHANNEL_DELIVERIES.labels(row["channel"], outcome.state).inc()
            log.warning(f"delivery {outcome.state}", extra={**fields, "error": outcome.reason})
            return
        except DeliveryError as error:
            if error.final or attempts >= self.channels.max_attempts:
                await repo.dead(delivery_id, parts_sent, ids, error.reason)
                CHANNEL_DELIVERIES.labels(row["channel"], "dead").inc()
                log.error("delivery given up", extra={**fields, "error": error.reason})
                return
            delay = backoff_seconds(
                attempts, self.channels.retry_base_seconds, self.channels.retry_max_seconds
            )
            if error.retry_after is not None:  # the provider's word, within reason
                delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER))
            await repo.retry_later(delivery_id, parts_sent, ids, error.reason, delay)
            CHANNEL_DELIVERIES.labels(row["channel"], "retry").inc()
            log.warning(
                "delivery failed, will retry",
                extra={**fields, "retry_in_seconds": round(delay, 2), "error": error.reason},
            )
            return
        await repo.sent(delivery_id, parts_sent, ids)
        CHANNEL_DELIVERIES.labels(row["channel"], "sent").inc()
        log.info("delivered", extra={**fields, "parts": parts_sent})

    def _prepare(self, row: Any) -> tuple[Adapter, list[Outgoing], Any]:
        adapter = self.adapters.get(row["channel"])
        if adapter is None:
            raise _StoppedError("dead", f"channel {row['channel']} cannot deliver yet")
        if row["purpose"] == "message" and row["granted"] is False:
            raise _StoppedError("suppressed", "the end user opted out on this channel")
        if row["address"] is None:
            raise _StoppedError("suppressed", "no address of this end user on this channel")
        if row["ciphertext"] is None:
            raise _StoppedError("dead", "the program has no credentials for this channel any more")
        if self.channels.key is None:
            raise DeliveryError("no channel key is set (COACHOPS_CHANNEL_KEY)")
        try:
            credentials = decrypt(self.channels.key, bytes(row["ciphertext"]))
        except CredentialsUnreadableError as error:
            raise _StoppedError("dead", str(error)) from error
        window = adapter.capabilities.window_hours
        last_inbound: datetime = row["last_inbound_at"]
        if window is not None and datetime.now(UTC) - last_inbound > timedelta(hours=window):
            template = _template(row["spec"], row["channel"])
            if template is None:
                raise _StoppedError(
                    "dead",
                    f"more than {window} h since the end user last wrote, and the channel "
                    "names no template",
                )
            text = row["body"][:TEMPLATE_TEXT_LIMIT]
            return adapter, [Outgoing(row["address"], text, template, _about(row))], credentials
        limit = adapter.capabilities.max_length
        parts = split(row["body"], limit) if adapter.capabilities.splits else [row["body"][:limit]]
        about = _about(row)
        return adapter, [Outgoing(row["address"], part, None, about) for part in parts], credentials

    async def _send(self, adapter: Adapter, credentials: Any, outgoing: Outgoing) -> str:
        try:
            return await adapter.send(self._client(), credentials, outgoing)
        except (aiohttp.ClientError, TimeoutError) as error:
            # The type only: an aiohttp error can quote the URL, which holds Telegram's token.
            raise DeliveryError(f"provider unreachable ({type(error).__name__})") from error
