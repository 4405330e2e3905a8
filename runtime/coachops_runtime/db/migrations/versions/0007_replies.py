"""AI replies: a job per inbound message, replies linked to it, memory, token usage.

``reply_jobs`` is a tenant table (forced RLS, the two tenant policies). The runtime inserts
one row per inbound end-user message meant for the AI coach, in the transaction that
stores the message, so a message is never stored without its job. ``message_id`` is
unique: one job per inbound message. ``state`` moves pending -> done | skipped (paused
conversation, nothing generated) | failed; ``fallback_message_id`` records the fallback
notice sent while the provider was down (the job then stays pending and is retried).
``prompt`` keeps the last assembled prompt's system part and per-part token counts, for
the creator's debugging; it is never logged.

``messages`` gains ``reply_to`` (the inbound message an AI reply answers; a unique partial
index makes a second AI reply to one message impossible, whoever writes it), the reply's
``citations`` and its token usage. ``conversations`` gains ``ai_unavailable_since``: set
when the end user got the fallback text, cleared by the real answer. ``conversation_memory``
holds a rolling summary per conversation and the last message it covers.

As for e-mail (0004): ``reply_due`` holds ``(job_id, creator_id, conversation_id,
message_id, due_at, leased_until, attempts)`` of the pending jobs, kept by a trigger owned
by the schema owner; no role but the owner has a grant on it. ``claim_reply_job(lease)``
(SECURITY DEFINER, executable by the shared runtime role only) leases the earliest due
job whose conversation has no earlier unfinished job, with ``FOR UPDATE SKIP LOCKED``, and
returns it. Generation runs outside any transaction; a worker that dies leaves the lease
to expire, and the job is claimed again.

Revision ID: 0007
Revises: 0006
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        ALTER TABLE messages
          ADD COLUMN reply_to bigint,
          ADD COLUMN citations jsonb,
          ADD COLUMN prompt_tokens integer,
          ADD COLUMN completion_tokens integer,
          ADD COLUMN model text
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX messages_one_ai_reply ON messages (reply_to)"
        " WHERE author = 'ai' AND reply_to IS NOT NULL"
    )
    op.execute("ALTER TABLE conversations ADD COLUMN ai_unavailable_since timestamptz")
    op.execute(
        """
        CREATE TABLE reply_jobs (
            job_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            conversation_id uuid NOT NULL,
            end_user_id uuid NOT NULL,
            message_id bigint NOT NULL UNIQUE,
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'done', 'skipped', 'failed')),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text,
            reply_message_id bigint,
            fallback_message_id bigint,
            prompt jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            FOREIGN KEY (creator_id, conversation_id)
                REFERENCES conversations (creator_id, conversation_id) ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table("reply_jobs", runtime_role, privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)
    op.execute(
        "CREATE INDEX reply_jobs_user_day ON reply_jobs (creator_id, end_user_id, created_at)"
    )
    op.execute(
        """
        CREATE TABLE conversation_memory (
            conversation_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            summary text NOT NULL DEFAULT '',
            through_message_id bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (creator_id, conversation_id)
                REFERENCES conversations (creator_id, conversation_id) ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table(
        "conversation_memory", runtime_role, privileges="SELECT, INSERT, UPDATE"
    ):
        op.execute(statement)
    op.execute(
        """
        CREATE TABLE reply_due (
            job_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL,
            conversation_id uuid NOT NULL,
            message_id bigint NOT NULL,
            due_at timestamptz NOT NULL,
            leased_until timestamptz,
            attempts integer NOT NULL DEFAULT 0
        )
        """
    )
    op.execute("CREATE INDEX reply_due_at ON reply_due (due_at)")
    op.execute("CREATE INDEX reply_due_conversation ON reply_due (conversation_id, message_id)")
    op.execute("REVOKE ALL ON reply_due FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_reply_due() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM public.reply_due WHERE job_id = OLD.job_id;
            RETURN OLD;
          END IF;
          IF NEW.state <> 'pending' THEN
            DELETE FROM public.reply_due WHERE job_id = NEW.job_id;
          ELSE
            -- A new due time (a retry after a fallback) ends the lease of the attempt.
            INSERT INTO public.reply_due (job_id, creator_id, conversation_id, message_id,
                                          due_at)
            VALUES (NEW.job_id, NEW.creator_id, NEW.conversation_id, NEW.message_id,
                    NEW.next_attempt_at)
            ON CONFLICT (job_id) DO UPDATE SET due_at = EXCLUDED.due_at, leased_until = NULL;
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER reply_due_sync"
        " AFTER INSERT OR UPDATE OF state, next_attempt_at OR DELETE"
        " ON reply_jobs FOR EACH ROW EXECUTE FUNCTION sync_reply_due()"
    )
    op.execute(
        """
        CREATE FUNCTION claim_reply_job(lease_seconds double precision)
        RETURNS TABLE (creator_id uuid, job_id uuid, attempts integer)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          WITH picked AS (
            SELECT d.job_id FROM public.reply_due d
            WHERE d.due_at <= now()
              AND (d.leased_until IS NULL OR d.leased_until < now())
              AND NOT EXISTS (
                SELECT 1 FROM public.reply_due e
                WHERE e.conversation_id = d.conversation_id AND e.message_id < d.message_id)
            ORDER BY d.due_at LIMIT 1
            FOR UPDATE SKIP LOCKED
          )
          UPDATE public.reply_due r
          SET leased_until = now() + make_interval(secs => lease_seconds),
              attempts = r.attempts + 1
          FROM picked WHERE r.job_id = picked.job_id
          RETURNING r.creator_id, r.job_id, r.attempts
        $$
        """
    )
    for function in ("sync_reply_due()", "claim_reply_job(double precision)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_reply_job(double precision) TO {runtime_role}")


def downgrade() -> None:
    op.execute("DROP TRIGGER reply_due_sync ON reply_jobs")
    op.execute("DROP FUNCTION claim_reply_job(double precision)")
    op.execute("DROP FUNCTION sync_reply_due()")
    op.execute("DROP TABLE reply_due")
    op.execute("DROP TABLE conversation_memory")
    op.execute("DROP TABLE reply_jobs")
    op.execute("ALTER TABLE conversations DROP COLUMN ai_unavailable_since")
    op.execute("DROP INDEX messages_one_ai_reply")
    op.execute(
        "ALTER TABLE messages DROP COLUMN reply_to, DROP COLUMN citations,"
        " DROP COLUMN prompt_tokens, DROP COLUMN completion_tokens, DROP COLUMN model"
    )
