"""E-mail as a conversation channel, and delivery statuses reported by the providers.

Tenant tables (forced RLS, the two tenant policies):

- ``email_threads``: per e-mail conversation, what a reply needs so the end user's mail
  client threads it: the subject, the ``Message-ID`` of the end user's latest mail
  (``In-Reply-To``) and the ``References`` chain (that mail's own References followed by
  its Message-ID, at most 20 ids).
- ``channel_statuses``: the latest status a provider reported for one of its message ids
  (Twilio status callbacks, WhatsApp ``statuses``): sent, delivered, read or failed. A
  status only ever moves forward (``rank``), so callbacks arriving out of order or twice
  leave the furthest one. Keyed by the provider's id rather than by delivery, because a
  callback may arrive before the worker has committed the id it was sent under.

``enqueue_channel_delivery()`` now queues deliveries of e-mail conversations too.

Revision ID: 0013
Revises: 0012
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0013"
down_revision = "0012"

_CHANNEL = "channel IN ('telegram', 'whatsapp', 'sms', 'email', 'slack')"


def _enqueue(channels: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION enqueue_channel_delivery() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          INSERT INTO public.channel_outbox
              (creator_id, program_id, conversation_id, end_user_id, message_id, channel, body)
          SELECT v.creator_id, v.program_id, v.conversation_id, v.end_user_id, NEW.message_id,
                 v.channel, NEW.body
          FROM public.conversations v
          WHERE v.conversation_id = NEW.conversation_id
            AND v.channel IN ({channels});
          RETURN NEW;
        END $$
    """


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE email_threads (
            conversation_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            subject text NOT NULL DEFAULT '',
            last_message_id text NOT NULL,
            refs text[] NOT NULL DEFAULT '{}',
            updated_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (creator_id, conversation_id)
                REFERENCES conversations (creator_id, conversation_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE channel_statuses (
            program_id uuid NOT NULL,
            channel text NOT NULL CHECK ({_CHANNEL}),
            provider_id text NOT NULL,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            status text NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
            rank smallint NOT NULL,
            error text,
            reported_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (program_id, channel, provider_id),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    for table in ("email_threads", "channel_statuses"):
        for statement in tenant_table(table, runtime_role, privileges="SELECT, INSERT, UPDATE"):
            op.execute(statement)
    op.execute(_enqueue("'telegram', 'slack', 'sms', 'whatsapp', 'email'"))


def downgrade() -> None:
    op.execute(_enqueue("'telegram', 'slack', 'sms', 'whatsapp'"))
    op.execute("DROP TABLE channel_statuses, email_threads")
