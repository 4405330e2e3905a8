"""E-mail delivery: attempts, backoff and a dead state on the outbox, and a queue of due ids.

``email_outbox`` gains ``attempts``, ``next_attempt_at``, ``last_error`` and ``dead_at``.
It stays a tenant table: forced RLS, the two tenant policies, nothing else.

The worker has to find due e-mails of every tenant before it can name one, as login has to
find an account's tenant. The same shape answers it: ``email_due`` holds only
``(email_id, creator_id, due_at)`` of the e-mails that are neither sent nor dead, kept by
a trigger owned by the schema owner; no role but the owner has a grant on it.
``claim_due_email()`` (SECURITY DEFINER, executable by the shared runtime role only) locks
the earliest due entry with ``FOR UPDATE SKIP LOCKED`` and returns its pair. The lock
lasts until the caller's transaction ends, so concurrent workers never claim the same
e-mail; the caller then names the tenant and reads the row under RLS as usual.

Revision ID: 0004
Revises: 0003
"""

from alembic import context, op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        ALTER TABLE email_outbox
          ADD COLUMN attempts integer NOT NULL DEFAULT 0,
          ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
          ADD COLUMN last_error text,
          ADD COLUMN dead_at timestamptz
        """
    )
    op.execute(
        """
        CREATE TABLE email_due (
            email_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL,
            due_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX email_due_at ON email_due (due_at)")
    op.execute("REVOKE ALL ON email_due FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_email_due() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM public.email_due WHERE email_id = OLD.email_id;
            RETURN OLD;
          END IF;
          IF NEW.sent_at IS NOT NULL OR NEW.dead_at IS NOT NULL THEN
            DELETE FROM public.email_due WHERE email_id = NEW.email_id;
          ELSE
            INSERT INTO public.email_due (email_id, creator_id, due_at)
            VALUES (NEW.email_id, NEW.creator_id, NEW.next_attempt_at)
            ON CONFLICT (email_id) DO UPDATE SET due_at = EXCLUDED.due_at;
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER email_due_sync"
        " AFTER INSERT OR UPDATE OF sent_at, dead_at, next_attempt_at OR DELETE"
        " ON email_outbox FOR EACH ROW EXECUTE FUNCTION sync_email_due()"
    )
    op.execute(
        """
        CREATE FUNCTION claim_due_email() RETURNS TABLE (creator_id uuid, email_id uuid)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          SELECT d.creator_id, d.email_id FROM public.email_due d
          WHERE d.due_at <= now() ORDER BY d.due_at LIMIT 1
          FOR UPDATE SKIP LOCKED
        $$
        """
    )
    for function in ("sync_email_due()", "claim_due_email()"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_due_email() TO {runtime_role}")
    # E-mails queued before this revision: the owner reads them without RLS once.
    op.execute("ALTER TABLE email_outbox NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "INSERT INTO email_due (email_id, creator_id, due_at)"
        " SELECT email_id, creator_id, created_at FROM email_outbox WHERE sent_at IS NULL"
    )
    op.execute("ALTER TABLE email_outbox FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("DROP TRIGGER email_due_sync ON email_outbox")
    op.execute("DROP FUNCTION claim_due_email()")
    op.execute("DROP FUNCTION sync_email_due()")
    op.execute("DROP TABLE email_due")
    op.execute(
        "ALTER TABLE email_outbox DROP COLUMN attempts, DROP COLUMN next_attempt_at,"
        " DROP COLUMN last_error, DROP COLUMN dead_at"
    )
