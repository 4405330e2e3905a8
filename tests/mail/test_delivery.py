"""The outbox poller against real PostgreSQL and a real Mailpit: delivery, retries while the
SMTP server is down, the dead state, exactly-once claims, and the RLS it works within."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import pytest

from coachops_devstack.mailpit import Mailpit
from coachops_devstack.ports import free_port
from coachops_devstack.stack import Stack
from coachops_runtime.kit.db import create_pool
from coachops_runtime.kit.settings import Settings
from coachops_runtime.mail.outbox import OutboxPoller
from tests.conftest import Database
from tests.mail.conftest import (
    PUBLIC_BASE_URL,
    Outbox,
    StartWorker,
    wait_for_mail,
    worker_settings_for,
)

TOKEN = f"{uuid.uuid4().hex}.{uuid.uuid4().hex}.secret-part"


def verify(to: str) -> tuple[str, str, dict[str, str]]:
    return (to, "verify_email", {"token": TOKEN})


def address() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


async def test_a_queued_e_mail_is_sent_once_and_recorded(
    outbox: Outbox,
    worker_settings: Settings,
    worker_pool: asyncpg.Pool,
    mailpit: Mailpit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    creator = await outbox.tenant("mailone")
    to = address()
    (email_id,) = await outbox.queue(creator, [verify(to)])
    poller = OutboxPoller(worker_settings, worker_pool)
    with caplog.at_level(logging.DEBUG, logger="coachops.worker"):
        assert await poller.deliver_one()
        assert not await poller.deliver_one()  # nothing else is due
    row = await outbox.row(email_id)
    assert row["sent_at"] is not None
    assert (row["attempts"], row["last_error"], row["queued"]) == (1, None, False)
    (summary,) = await wait_for_mail(mailpit, to)
    message = await mailpit.message(summary["ID"])
    assert message["MessageID"] == f"{email_id}@coachops.dev"
    assert message["Subject"] == "Verify your e-mail address for coachops"
    assert f"{PUBLIC_BASE_URL}/verify#{TOKEN}" in message["Text"]
    assert "e-mail sent" in caplog.text
    assert TOKEN not in caplog.text


async def test_while_smtp_is_down_the_e_mail_waits_with_backoff_then_goes_once(
    outbox: Outbox, database: Database, stack: Stack, own_mailpit: Mailpit
) -> None:
    settings = worker_settings_for(
        database,
        stack,
        own_mailpit.smtp_port,
        mail_retry_base_seconds=2.0,
        mail_retry_max_seconds=2.0,
    )
    pool = await create_pool(settings.model_copy(update={"db_pool_size": 2}))
    try:
        poller = OutboxPoller(settings, pool)
        creator = await outbox.tenant("maildown")
        to = address()
        (email_id,) = await outbox.queue(creator, [verify(to)])
        own_mailpit.stop()

        assert await poller.deliver_one()
        row = await outbox.row(email_id)
        assert row["sent_at"] is None
        assert row["dead_at"] is None
        assert row["attempts"] == 1
        assert row["queued"]
        assert row["later"]
        assert "SMTPConnectError" in row["last_error"]
        # Backed off (1-2 s with this base and cap): not due yet.
        assert not await poller.deliver_one()

        await own_mailpit.start()
        await asyncio.sleep(2.1)
        assert await poller.deliver_one()
        row = await outbox.row(email_id)
        assert row["sent_at"] is not None
        assert (row["attempts"], row["last_error"], row["queued"]) == (2, None, False)
        assert not await poller.deliver_one()
        await wait_for_mail(own_mailpit, to, count=1)
        await asyncio.sleep(0.3)
        assert len(await own_mailpit.messages(to=to)) == 1
    finally:
        await pool.close()


async def test_after_the_last_attempt_the_e_mail_is_dead(
    outbox: Outbox, database: Database, stack: Stack
) -> None:
    # Nothing listens on this port: every attempt fails to connect.
    settings = worker_settings_for(
        database,
        stack,
        free_port(),
        mail_max_attempts=3,
        mail_retry_base_seconds=0.05,
        mail_retry_max_seconds=0.1,
    )
    pool = await create_pool(settings.model_copy(update={"db_pool_size": 2}))
    try:
        poller = OutboxPoller(settings, pool)
        creator = await outbox.tenant("maildead")
        (email_id,) = await outbox.queue(creator, [verify(address())])
        attempts = []
        for _ in range(3):
            await asyncio.sleep(0.15)  # past the longest backoff
            assert await poller.deliver_one()
            attempts.append((await outbox.row(email_id))["attempts"])
        assert attempts == [1, 2, 3]
        row = await outbox.row(email_id)
        assert row["dead_at"] is not None
        assert row["sent_at"] is None
        assert not row["queued"]
        assert "SMTPConnectError" in row["last_error"]
        await asyncio.sleep(0.15)
        assert not await poller.deliver_one()  # dead e-mails are never claimed again
        assert (await outbox.row(email_id))["attempts"] == 3
    finally:
        await pool.close()


async def test_an_e_mail_that_can_never_go_is_dead_at_once(
    outbox: Outbox, database: Database, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A 550 for the address (Mailpit refuses recipients outside the pattern) and a template
    # that does not exist cannot succeed later: no retries.
    server = Mailpit(
        tmp_path_factory.mktemp("refusing"),
        extra_args=("--smtp-allowed-recipients", r"@allowed\.test$"),
    )
    await server.start()
    settings = worker_settings_for(database, stack, server.smtp_port)
    pool = await create_pool(settings.model_copy(update={"db_pool_size": 2}))
    try:
        poller = OutboxPoller(settings, pool)
        creator = await outbox.tenant("mailfinal")
        refused, unknown, fine = await outbox.queue(
            creator,
            [
                verify("someone@refused.test"),
                ("someone@allowed.test", "no_such_template", {}),
                verify("someone@allowed.test"),
            ],
        )
        for _ in range(3):
            assert await poller.deliver_one()
        assert not await poller.deliver_one()
        rows = {row["email_id"]: row for row in await outbox.rows(refused, unknown, fine)}
        assert rows[refused]["dead_at"] is not None
        assert rows[refused]["attempts"] == 1
        assert "550" in rows[refused]["last_error"]
        assert rows[unknown]["dead_at"] is not None
        assert rows[unknown]["attempts"] == 1
        assert rows[unknown]["last_error"] == "unknown template 'no_such_template'"
        assert rows[fine]["sent_at"] is not None
        assert len(await server.messages()) == 1
    finally:
        await pool.close()
        server.stop()


async def test_a_claimed_e_mail_is_skipped_by_every_other_transaction(
    outbox: Outbox, database: Database
) -> None:
    creator = await outbox.tenant("mailclaim")
    first, second = await outbox.queue(creator, [verify(address()), verify(address())])
    holders = [await asyncpg.connect(database.runtime_dsn) for _ in range(3)]
    try:
        claims = []
        for conn in holders:
            await conn.execute("BEGIN")
            claims.append(await conn.fetchrow("SELECT creator_id, email_id FROM claim_due_email()"))
        assert [claim["email_id"] if claim else None for claim in claims] == [first, second, None]
        assert claims[0]["creator_id"] == creator
        await holders[0].execute("ROLLBACK")  # a worker that dies mid-delivery lets go
        again = await holders[2].fetchrow("SELECT email_id FROM claim_due_email()")
        assert again is not None
        assert again["email_id"] == first
    finally:
        for conn in holders:
            await conn.close()


async def test_two_worker_processes_send_every_e_mail_exactly_once(
    outbox: Outbox, worker_settings: Settings, mailpit: Mailpit, start_worker: StartWorker
) -> None:
    one = await start_worker(worker_settings, "worker-1")
    two = await start_worker(worker_settings, "worker-2")
    recipients = [address() for _ in range(30)]
    north = await outbox.tenant("mailnorth")
    south = await outbox.tenant("mailsouth")
    ids = await outbox.queue(north, [verify(to) for to in recipients[:15]])
    ids += await outbox.queue(south, [verify(to) for to in recipients[15:]])
    for _ in range(300):
        rows = await outbox.rows(*ids)
        if all(row["sent_at"] is not None for row in rows):
            break
        await asyncio.sleep(0.1)
    assert [row["attempts"] for row in rows] == [1] * 30
    for to in recipients:
        await wait_for_mail(mailpit, to, count=1)
    await asyncio.sleep(0.3)
    assert [len(await mailpit.messages(to=to)) for to in recipients] == [1] * 30
    sent = [p.log_path.read_text().count('"e-mail sent"') for p in (one, two)]
    assert sum(sent) == 30, sent
    print(f"e-mails sent by each worker: {sent}")


async def test_the_due_queue_is_the_owner_s_alone_and_the_outbox_keeps_its_rls(
    database: Database,
) -> None:
    conn = await asyncpg.connect(database.superuser_dsn)
    try:
        checks = await conn.fetchrow(
            """
            SELECT
              has_table_privilege('coachops_runtime', 'email_due', 'SELECT') AS runtime_reads,
              has_table_privilege('coachops_tenants', 'email_due', 'SELECT') AS tenants_read,
              has_function_privilege('coachops_runtime', 'claim_due_email()', 'EXECUTE')
                AS runtime_claims,
              has_function_privilege('coachops_tenants', 'claim_due_email()', 'EXECUTE')
                AS tenants_claim,
              (SELECT relrowsecurity AND relforcerowsecurity FROM pg_class
                WHERE oid = 'email_outbox'::regclass) AS forced,
              (SELECT array_agg(polname::text ORDER BY polname) FROM pg_policy
                WHERE polrelid = 'email_outbox'::regclass) AS policies,
              (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'email_outbox'::regclass
                AND attname = 'creator_id') AS creator_required
            """
        )
    finally:
        await conn.close()
    assert dict(checks) == {
        "runtime_reads": False,
        "tenants_read": False,
        "runtime_claims": True,
        "tenants_claim": False,
        "forced": True,
        "policies": ["tenant_binding", "tenant_context"],
        "creator_required": True,
    }


async def test_a_poll_claims_one_then_as_many_as_its_lanes(
    outbox: Outbox, worker_settings: Settings, worker_pool: asyncpg.Pool, mailpit: Mailpit
) -> None:
    creator = await outbox.tenant("mailpoll")
    recipients = [address() for _ in range(5)]
    ids = await outbox.queue(creator, [verify(to) for to in recipients])
    poller = OutboxPoller(worker_settings.model_copy(update={"mail_concurrency": 2}), worker_pool)
    assert [await poller.poll() for _ in range(3)] == [3, 2, 0]
    assert all(row["sent_at"] is not None for row in await outbox.rows(*ids))
    for to in recipients:
        await wait_for_mail(mailpit, to, count=1)
