"""Consent history, the audit log and message retention.

Tenant tables (forced RLS, the two tenant policies):

- ``consent_events``: every change of an end user's consent on a channel (a STOP or
  START keyword, the creator's or the end user's own change), append-only for the runtime
  (SELECT, INSERT). An AFTER INSERT trigger writes the change into ``consents``, which is
  therefore the current state derived from the history; the runtime may no longer INSERT
  or UPDATE ``consents`` itself, so no change can bypass the history. Rows that existed
  before this revision get one event each with source ``recorded``.
- ``audit_log``: who changed data or configuration (a creator's account, an API key),
  what, on which object, under which request id. The runtime has SELECT and INSERT only:
  no UPDATE, DELETE or TRUNCATE, so a request can neither rewrite nor erase it. Rows name
  their objects by id and never carry names, e-mail addresses or message text.
- ``message_days``: the daily analytics figures of a program's UTC day, written by the
  retention purge before it deletes that day's messages, so ``/v1/analytics/daily`` keeps
  its figures for purged days.

``retention_programs`` mirrors, for every live program whose ``spec.retention.messageDays``
is above 0, that limit (trigger-kept from ``programs``, owner-only, ids and a number), and
``retention_programs()`` (SECURITY DEFINER, executable by the shared runtime role) lists
it: the worker's purge must find programs of every tenant before it names one. The purge
deletes messages and finished channel deliveries, so the runtime gains DELETE on
``messages`` and ``channel_outbox``.

Revision ID: 0011
Revises: 0010
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import TENANT_GROUP, tenant_table

revision = "0011"
down_revision = "0010"

_CHANNEL = "channel IN ('web', 'telegram', 'whatsapp', 'sms', 'email', 'slack')"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    # ------------------------------------------------------------ consent history
    op.execute(
        f"""
        CREATE TABLE consent_events (
            event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            end_user_id uuid NOT NULL,
            channel text NOT NULL CHECK ({_CHANNEL}),
            granted boolean NOT NULL,
            address text NOT NULL DEFAULT '',
            source text NOT NULL CHECK (source IN
                ('keyword_stop', 'keyword_start', 'creator', 'end_user', 'recorded')),
            actor_id uuid,
            request_id text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE INDEX consent_events_end_user ON consent_events (creator_id, end_user_id, event_id)"
    )
    for statement in tenant_table("consent_events", runtime_role, privileges="SELECT, INSERT"):
        op.execute(statement)
    # The owner's rights: the runtime keeps SELECT and DELETE on consents, not INSERT or
    # UPDATE. The owner is under forced RLS too, so the row lands in the caller's tenant.
    op.execute(
        """
        CREATE FUNCTION apply_consent_event() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          INSERT INTO public.consents (creator_id, end_user_id, channel, granted, address,
                                       updated_at)
          VALUES (NEW.creator_id, NEW.end_user_id, NEW.channel, NEW.granted, NEW.address,
                  NEW.created_at)
          ON CONFLICT (end_user_id, channel) DO UPDATE SET granted = EXCLUDED.granted,
              address = EXCLUDED.address, updated_at = EXCLUDED.updated_at;
          RETURN NEW;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION apply_consent_event() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER consent_events_apply AFTER INSERT ON consent_events"
        " FOR EACH ROW EXECUTE FUNCTION apply_consent_event()"
    )
    op.execute(f"REVOKE INSERT, UPDATE ON consents FROM {runtime_role}, {TENANT_GROUP}")
    # Consents recorded before the history began: the owner reads them without RLS once.
    op.execute("ALTER TABLE consents NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE consent_events DISABLE TRIGGER consent_events_apply")
    op.execute(
        "INSERT INTO consent_events (creator_id, end_user_id, channel, granted, address,"
        " source, created_at)"
        " SELECT creator_id, end_user_id, channel, granted, address, 'recorded', updated_at"
        " FROM consents"
    )
    op.execute("ALTER TABLE consent_events ENABLE TRIGGER consent_events_apply")
    op.execute("ALTER TABLE consents FORCE ROW LEVEL SECURITY")

    # ------------------------------------------------------------ the audit log
    op.execute(
        """
        CREATE TABLE audit_log (
            audit_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            actor_kind text NOT NULL CHECK (actor_kind IN ('account', 'api_key', 'system')),
            actor_id uuid,
            action text NOT NULL,
            target_kind text NOT NULL,
            target_id text NOT NULL DEFAULT '',
            details jsonb NOT NULL DEFAULT '{}',
            request_id text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute("CREATE INDEX audit_log_page ON audit_log (creator_id, audit_id DESC)")
    op.execute("CREATE INDEX audit_log_action ON audit_log (creator_id, action, audit_id DESC)")
    for statement in tenant_table("audit_log", runtime_role, privileges="SELECT, INSERT"):
        op.execute(statement)

    # ------------------------------------------------------------ retention
    op.execute(
        """
        CREATE TABLE message_days (
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            day date NOT NULL,
            messages_in integer NOT NULL,
            messages_out integer NOT NULL,
            active_users integer NOT NULL,
            check_ins_sent integer NOT NULL,
            check_ins_answered integer NOT NULL,
            PRIMARY KEY (program_id, day),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX message_days_page ON message_days (creator_id, day, program_id)")
    for statement in tenant_table("message_days", runtime_role, privileges="SELECT, INSERT"):
        op.execute(statement)
    op.execute(f"GRANT DELETE ON messages, channel_outbox TO {runtime_role}")

    op.execute(
        """
        CREATE TABLE retention_programs (
            program_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL,
            message_days integer NOT NULL
        )
        """
    )
    op.execute("REVOKE ALL ON retention_programs FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_retention_programs() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
        DECLARE days integer := 0;
        BEGIN
          IF TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL
             AND jsonb_typeof(NEW.spec -> 'retention' -> 'messageDays') = 'number' THEN
            days := floor((NEW.spec -> 'retention' ->> 'messageDays')::numeric)::integer;
          END IF;
          DELETE FROM public.retention_programs
          WHERE program_id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.program_id
                                   ELSE NEW.program_id END);
          IF days > 0 THEN
            INSERT INTO public.retention_programs (program_id, creator_id, message_days)
            VALUES (NEW.program_id, NEW.creator_id, days);
          END IF;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER retention_programs_sync AFTER INSERT OR UPDATE OR DELETE"
        " ON programs FOR EACH ROW EXECUTE FUNCTION sync_retention_programs()"
    )
    op.execute(
        """
        CREATE FUNCTION retention_programs()
        RETURNS TABLE (creator_id uuid, program_id uuid, message_days integer)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          SELECT r.creator_id, r.program_id, r.message_days FROM public.retention_programs r
          ORDER BY r.creator_id, r.program_id
        $$
        """
    )
    for function in ("sync_retention_programs()", "retention_programs()"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION retention_programs() TO {runtime_role}")
    # Programs copied before this revision: the owner reads them without RLS once.
    op.execute("ALTER TABLE programs NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "INSERT INTO retention_programs (program_id, creator_id, message_days)"
        " SELECT program_id, creator_id, days FROM ("
        "   SELECT program_id, creator_id,"
        "     floor((spec -> 'retention' ->> 'messageDays')::numeric)::integer AS days"
        "   FROM programs WHERE deleted_at IS NULL"
        "     AND jsonb_typeof(spec -> 'retention' -> 'messageDays') = 'number') p"
        " WHERE days > 0"
    )
    op.execute("ALTER TABLE programs FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute("DROP TRIGGER retention_programs_sync ON programs")
    op.execute("DROP FUNCTION retention_programs()")
    op.execute("DROP FUNCTION sync_retention_programs()")
    op.execute("DROP TABLE retention_programs")
    op.execute(f"REVOKE DELETE ON messages, channel_outbox FROM {runtime_role}")
    op.execute("DROP TABLE message_days")
    op.execute("DROP TABLE audit_log")
    op.execute(f"GRANT INSERT, UPDATE ON consents TO {runtime_role}, {TENANT_GROUP}")
    op.execute("DROP TABLE consent_events")
    op.execute("DROP FUNCTION apply_consent_event()")
