"""Per-person export and erasure: durable jobs, a claim queue, tombstones, erased counts.

Tenant tables (forced RLS, the two tenant policies):

- ``export_jobs``: one archive of everything held about one end user, built by the
  worker. ``started_at``/``progress`` show it running; ``state`` moves pending -> ready
  (``archive`` holds the bytes) -> downloaded (the bytes are dropped) or expired, or
  failed. The download link is single use: only the SHA-256 of its secret is stored
  (``link_hash``), with its expiry. The job belongs to its end user (a foreign key with
  ON DELETE CASCADE), so erasing the person removes their archives too.
- ``erasure_jobs``: one pending erasure per end user (unique), with ``steps`` (per-store
  state: done, rows removed), so a worker killed midway resumes where it stopped. State
  ``unconfirmed`` is an end user's own request waiting for its confirmation code (only
  its SHA-256 is kept). When every step is done the row is deleted in the same
  transaction that writes its tombstone, so no job row keeps the person's id.
- ``erasure_tombstones``: that an erasure happened, when, who asked (``account:<id>``,
  ``api_key:<id>`` or ``end_user``) and the request id, and how many rows, keys and
  vectors each step removed. No personal data.
- ``erased_activity``: the counts the daily analytics are made of (messages in and out,
  active users, check-ins sent and answered), per program and UTC day, of erased end users:
  the only thing kept of their messages, without any id or text.

Like e-mail (0004), the worker finds due jobs of every tenant through ``privacy_due``
(ids only, owner-only, kept by triggers) and ``claim_privacy_job()`` (SECURITY DEFINER,
``FOR UPDATE SKIP LOCKED``). The claiming transaction stays open while the job runs, so a
worker that dies releases it at once; the triggers fire only when a job is queued, its
due time moves or it leaves the queue, which the worker does in the claiming transaction
itself (progress and steps are written in other transactions and never touch the queue).

Grants: the runtime role gets DELETE on exactly the tables erasure removes rows from and
had no DELETE on (conversations, conversation_memory, reply_jobs, safety_events, goals,
channel_identities, email_outbox, proactive_decisions; messages and channel_outbox have
it since 0011); tenant login roles get none of these (erasure runs in the shared worker).
``consent_events`` stays append-only: the end user's row cascades to it.

The audit log stays append-only for the runtime too (0011). ``redact_erased_end_user``
(SECURITY DEFINER, runtime role only) replaces, in the caller's tenant, the id of an end
user whose erasure is pending with ``erasure:<erasure id>`` wherever an audit row names
it, so the log keeps who did what and when without the person's id. It acts only for an
erasure job that exists and is pending.

Revision ID: 0012
Revises: 0011
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0012"
down_revision = "0011"

ERASURE_DELETES = (
    "messages",
    "conversations",
    "conversation_memory",
    "reply_jobs",
    "safety_events",
    "goals",
    "channel_identities",
    "channel_outbox",
    "email_outbox",
    "proactive_decisions",
)


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE export_jobs (
            export_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            end_user_id uuid NOT NULL,
            requested_by text NOT NULL,
            request_id text NOT NULL DEFAULT '',
            format text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'zip')),
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'ready', 'downloaded', 'expired', 'failed')),
            progress real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
            item_count integer NOT NULL DEFAULT 0,
            archive bytea,
            size_bytes integer,
            link_hash bytea,
            link_expires_at timestamptz,
            expires_at timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX export_jobs_end_user ON export_jobs (creator_id, end_user_id)")
    op.execute(
        """
        CREATE TABLE erasure_jobs (
            erasure_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            end_user_id uuid NOT NULL,
            requested_by text NOT NULL,
            request_id text NOT NULL DEFAULT '',
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('unconfirmed', 'pending')),
            confirmation_hash bytea,
            confirm_by timestamptz,
            steps jsonb NOT NULL DEFAULT '{}',
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            UNIQUE (creator_id, end_user_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE erasure_tombstones (
            erasure_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            requested_by text NOT NULL,
            request_id text NOT NULL,
            requested_at timestamptz NOT NULL,
            completed_at timestamptz NOT NULL DEFAULT now(),
            removed jsonb NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE erased_activity (
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            day date NOT NULL,
            messages_in integer NOT NULL DEFAULT 0,
            messages_out integer NOT NULL DEFAULT 0,
            active_users integer NOT NULL DEFAULT 0,
            check_ins_sent integer NOT NULL DEFAULT 0,
            check_ins_answered integer NOT NULL DEFAULT 0,
            PRIMARY KEY (creator_id, program_id, day),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    for table, privileges in (
        ("export_jobs", "SELECT, INSERT, UPDATE, DELETE"),
        ("erasure_jobs", "SELECT, INSERT, UPDATE, DELETE"),
        ("erasure_tombstones", "SELECT, INSERT"),
        ("erased_activity", "SELECT, INSERT, UPDATE"),
    ):
        for statement in tenant_table(table, runtime_role, privileges=privileges):
            op.execute(statement)
    op.execute(f"GRANT DELETE ON {', '.join(ERASURE_DELETES)} TO {runtime_role}")

    # ------------------------------------------------------------ the due queue
    op.execute(
        """
        CREATE TABLE privacy_due (
            job_id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('export', 'erasure')),
            creator_id uuid NOT NULL,
            due_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX privacy_due_at ON privacy_due (due_at)")
    op.execute("REVOKE ALL ON privacy_due FROM PUBLIC")
    # A ready archive stays queued until it expires (its next_attempt_at is its expiry):
    # the worker claims it then and drops the bytes.
    for kind, table, key, live in (
        ("export", "export_jobs", "export_id", "'pending', 'ready'"),
        ("erasure", "erasure_jobs", "erasure_id", "'pending'"),
    ):
        op.execute(
            f"""
            CREATE FUNCTION sync_{kind}_due() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $$ BEGIN
              IF TG_OP = 'DELETE' THEN
                DELETE FROM public.privacy_due WHERE job_id = OLD.{key};
                RETURN OLD;
              END IF;
              IF NEW.state NOT IN ({live}) THEN
                DELETE FROM public.privacy_due WHERE job_id = NEW.{key};
              ELSE
                INSERT INTO public.privacy_due (job_id, kind, creator_id, due_at)
                VALUES (NEW.{key}, '{kind}', NEW.creator_id, NEW.next_attempt_at)
                ON CONFLICT (job_id) DO UPDATE SET due_at = EXCLUDED.due_at;
              END IF;
              RETURN NEW;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {kind}_due_sync"
            " AFTER INSERT OR UPDATE OF state, next_attempt_at OR DELETE"
            f" ON {table} FOR EACH ROW EXECUTE FUNCTION sync_{kind}_due()"
        )
        op.execute(f"REVOKE ALL ON FUNCTION sync_{kind}_due() FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION claim_privacy_job()
        RETURNS TABLE (kind text, creator_id uuid, job_id uuid)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          SELECT d.kind, d.creator_id, d.job_id FROM public.privacy_due d
          WHERE d.due_at <= now() ORDER BY d.due_at LIMIT 1
          FOR UPDATE SKIP LOCKED
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION claim_privacy_job() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_privacy_job() TO {runtime_role}")
    op.execute(
        """
        CREATE FUNCTION redact_erased_end_user(p_erasure uuid) RETURNS bigint
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
        DECLARE
          subject text;
          marker text := 'erasure:' || p_erasure::text;
          n bigint;
        BEGIN
          SELECT j.end_user_id::text INTO subject FROM public.erasure_jobs j
          WHERE j.erasure_id = p_erasure AND j.state = 'pending';
          IF subject IS NULL THEN
            RETURN 0;
          END IF;
          UPDATE public.audit_log a SET
            target_id = CASE WHEN a.target_id = subject THEN marker ELSE a.target_id END,
            details = replace(a.details::text, subject, marker)::jsonb
          WHERE a.target_id = subject OR strpos(a.details::text, subject) > 0;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION redact_erased_end_user(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION redact_erased_end_user(uuid) TO {runtime_role}")


def downgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    # messages and channel_outbox keep the DELETE that 0011 grants them.
    kept = ("messages", "channel_outbox")
    tables = ", ".join(t for t in ERASURE_DELETES if t not in kept)
    op.execute(f"REVOKE DELETE ON {tables} FROM {runtime_role}")
    op.execute("DROP FUNCTION redact_erased_end_user(uuid)")
    op.execute("DROP FUNCTION claim_privacy_job()")
    op.execute("DROP TABLE export_jobs, erasure_jobs, erasure_tombstones, erased_activity")
    op.execute("DROP FUNCTION sync_export_due()")
    op.execute("DROP FUNCTION sync_erasure_due()")
    op.execute("DROP TABLE privacy_due")
