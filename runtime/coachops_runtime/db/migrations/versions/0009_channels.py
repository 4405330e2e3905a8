"""Channels: webhook directory, identities, inbound idempotency keys and the channel outbox.

``channel_hooks`` answers, before any tenant is known, which tenant a webhook URL
(program, channel) belongs to. Like ``email_due`` it holds ids only, is kept by a trigger
on ``channel_credentials`` (owned by the schema owner) and is read through
``channel_hook_tenant()`` (SECURITY DEFINER), the only grant on it.

Tenant tables (forced RLS, the two tenant policies):

- ``channel_identities``: a provider-side sender (Telegram chat, phone number, Slack
  user) of one program's channel mapped to an end user, with the address replies go to
  and when the sender last wrote (WhatsApp's 24-hour window).
- ``channel_inbound``: one row per provider message id (Telegram ``update_id``, Slack
  ``event_id``, Twilio ``MessageSid``, WhatsApp message id); its primary key is what makes
  a webhook delivered twice processed once.
- ``channel_outbox``: one row per delivery. An AFTER INSERT trigger on ``messages`` writes
  the row for every outbound message of a conversation on a provider channel, so the
  delivery commits in the same transaction as the reply, whoever stores it (AI reply,
  safety reply, fallback notice, the creator's takeover reply). Compliance answers (STOP,
  START, HELP) are written directly, without a message.

``channel_due`` mirrors the pending deliveries (trigger-kept, owner-only) and
``claim_channel_delivery()`` locks the earliest due one whose conversation has no earlier
pending delivery, so one conversation's messages leave in order.

Revision ID: 0009
Revises: 0008
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import TENANT_GROUP, tenant_table

revision = "0009"
down_revision = "0008"

_PROVIDER_CHANNEL = "channel IN ('telegram', 'whatsapp', 'sms', 'email', 'slack')"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    # ------------------------------------------------------------ the webhook directory
    op.execute(
        """
        CREATE TABLE channel_hooks (
            program_id uuid NOT NULL,
            channel text NOT NULL,
            creator_id uuid NOT NULL,
            PRIMARY KEY (program_id, channel)
        )
        """
    )
    op.execute("REVOKE ALL ON channel_hooks FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_channel_hooks() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM public.channel_hooks
            WHERE program_id = OLD.program_id AND channel = OLD.channel;
            RETURN OLD;
          END IF;
          INSERT INTO public.channel_hooks (program_id, channel, creator_id)
          VALUES (NEW.program_id, NEW.channel, NEW.creator_id)
          ON CONFLICT (program_id, channel) DO UPDATE SET creator_id = EXCLUDED.creator_id;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER channel_hooks_sync AFTER INSERT OR UPDATE OR DELETE"
        " ON channel_credentials FOR EACH ROW EXECUTE FUNCTION sync_channel_hooks()"
    )
    op.execute(
        """
        CREATE FUNCTION channel_hook_tenant(program uuid, kind text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          SELECT creator_id FROM public.channel_hooks WHERE program_id = program AND channel = kind
        $$
        """
    )
    # ------------------------------------------------------------ tenant tables
    op.execute(
        f"""
        CREATE TABLE channel_identities (
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            channel text NOT NULL CHECK ({_PROVIDER_CHANNEL}),
            external_id text NOT NULL,
            end_user_id uuid NOT NULL,
            address text NOT NULL,
            last_inbound_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (program_id, channel, external_id),
            UNIQUE (program_id, channel, end_user_id),
            FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
                ON DELETE CASCADE,
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE channel_inbound (
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            channel text NOT NULL CHECK ({_PROVIDER_CHANNEL}),
            provider_key text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (program_id, channel, provider_key),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE channel_outbox (
            delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            conversation_id uuid NOT NULL,
            end_user_id uuid NOT NULL,
            message_id bigint,
            channel text NOT NULL CHECK ({_PROVIDER_CHANNEL}),
            body text NOT NULL,
            purpose text NOT NULL DEFAULT 'message' CHECK (purpose IN ('message', 'compliance')),
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sent', 'dead', 'suppressed')),
            attempts integer NOT NULL DEFAULT 0,
            parts_sent integer NOT NULL DEFAULT 0,
            provider_ids text[] NOT NULL DEFAULT '{{}}',
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            FOREIGN KEY (creator_id, conversation_id)
                REFERENCES conversations (creator_id, conversation_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE INDEX channel_outbox_state ON channel_outbox (creator_id, state, delivery_id)"
    )
    for table, privileges in (
        ("channel_identities", "SELECT, INSERT, UPDATE"),
        ("channel_inbound", "SELECT, INSERT"),
        ("channel_outbox", "SELECT, INSERT, UPDATE"),
    ):
        for statement in tenant_table(table, runtime_role, privileges=privileges):
            op.execute(statement)
    # ------------------------------------------------------------ the due queue
    op.execute(
        """
        CREATE TABLE channel_due (
            delivery_id bigint PRIMARY KEY,
            creator_id uuid NOT NULL,
            conversation_id uuid NOT NULL,
            due_at timestamptz NOT NULL
        )
        """
    )
    # The claim's order: an index scan that stops at the first claimable row, no sort.
    op.execute("CREATE INDEX channel_due_at ON channel_due (due_at, delivery_id)")
    op.execute("CREATE INDEX channel_due_order ON channel_due (conversation_id, delivery_id)")
    op.execute("REVOKE ALL ON channel_due FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_channel_due() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM public.channel_due WHERE delivery_id = OLD.delivery_id;
            RETURN OLD;
          END IF;
          IF NEW.state <> 'pending' THEN
            DELETE FROM public.channel_due WHERE delivery_id = NEW.delivery_id;
          ELSE
            INSERT INTO public.channel_due (delivery_id, creator_id, conversation_id, due_at)
            VALUES (NEW.delivery_id, NEW.creator_id, NEW.conversation_id, NEW.next_attempt_at)
            ON CONFLICT (delivery_id) DO UPDATE SET due_at = EXCLUDED.due_at;
            PERFORM pg_notify('coachops_channel_due', '');
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER channel_due_sync"
        " AFTER INSERT OR UPDATE OF state, next_attempt_at OR DELETE"
        " ON channel_outbox FOR EACH ROW EXECUTE FUNCTION sync_channel_due()"
    )
    op.execute(
        """
        CREATE FUNCTION claim_channel_delivery() RETURNS TABLE (creator_id uuid, delivery_id bigint)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          SELECT d.creator_id, d.delivery_id FROM public.channel_due d
          WHERE d.due_at <= now() AND NOT EXISTS (
            SELECT FROM public.channel_due e
            WHERE e.conversation_id = d.conversation_id AND e.delivery_id < d.delivery_id)
          ORDER BY d.due_at, d.delivery_id LIMIT 1
          FOR UPDATE SKIP LOCKED
        $$
        """
    )
    # The delivery of an outbound message, in the message's own transaction. Invoker's
    # rights: the row is written under the caller's tenant, as the message is.
    op.execute(
        """
        CREATE FUNCTION enqueue_channel_delivery() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          INSERT INTO public.channel_outbox
              (creator_id, program_id, conversation_id, end_user_id, message_id, channel, body)
          SELECT v.creator_id, v.program_id, v.conversation_id, v.end_user_id, NEW.message_id,
                 v.channel, NEW.body
          FROM public.conversations v
          WHERE v.conversation_id = NEW.conversation_id
            AND v.channel IN ('telegram', 'slack', 'sms', 'whatsapp');
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER messages_channel_delivery AFTER INSERT ON messages FOR EACH ROW"
        " WHEN (NEW.direction = 'out') EXECUTE FUNCTION enqueue_channel_delivery()"
    )
    for function in (
        "sync_channel_hooks()",
        "channel_hook_tenant(uuid, text)",
        "sync_channel_due()",
        "claim_channel_delivery()",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(
        f"GRANT EXECUTE ON FUNCTION channel_hook_tenant(uuid, text) TO {runtime_role},"
        f" {TENANT_GROUP}"
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_channel_delivery() TO {runtime_role}")
    # Credentials copied before this revision: the owner reads them without RLS once.
    op.execute("ALTER TABLE channel_credentials NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "INSERT INTO channel_hooks (program_id, channel, creator_id)"
        " SELECT program_id, channel, creator_id FROM channel_credentials"
    )
    op.execute("ALTER TABLE channel_credentials FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("DROP TRIGGER messages_channel_delivery ON messages")
    op.execute("DROP FUNCTION enqueue_channel_delivery()")
    op.execute("DROP TRIGGER channel_due_sync ON channel_outbox")
    op.execute("DROP FUNCTION claim_channel_delivery()")
    op.execute("DROP FUNCTION sync_channel_due()")
    op.execute("DROP TABLE channel_due")
    op.execute("DROP TABLE channel_outbox, channel_inbound, channel_identities")
    op.execute("DROP TRIGGER channel_hooks_sync ON channel_credentials")
    op.execute("DROP FUNCTION channel_hook_tenant(uuid, text)")
    op.execute("DROP FUNCTION sync_channel_hooks()")
    op.execute("DROP TABLE channel_hooks")
