"""Runtime core: creator accounts, API keys, end users, conversations, messages.

Every tenant table carries ``creator_id NOT NULL`` and goes through ``tenant_table()``
(RLS enabled and forced, one policy for reading and writing, grants to the runtime).

Two small directories are *not* tenant tables, because a request has to find its tenant
before it can name it: ``tenant_directory`` (creator name -> id, for sign-up) and
``login_directory`` (e-mail -> id, for login and password reset). Triggers owned by the
schema owner keep them in sync; the runtime has no grant on them and reads one exact key at
a time through SECURITY DEFINER functions, so it can never list them.

Revision ID: 0002
Revises: 0001
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0002"
down_revision = "0001"

DML = "SELECT, INSERT, UPDATE, DELETE"

TABLES: list[tuple[str, str, str]] = [
    (
        "creator_accounts",
        """
        account_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        email text NOT NULL,
        password_hash text NOT NULL,
        email_verified_at timestamptz,
        token_version integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (creator_id, email)
        """,
        DML,
    ),
    (
        "action_tokens",
        """
        token_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        account_id uuid REFERENCES creator_accounts ON DELETE CASCADE,
        end_user_id uuid,
        program_id uuid,
        purpose text NOT NULL
            CHECK (purpose IN ('verify_email', 'password_reset', 'magic_link')),
        token_hash bytea NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
        """,
        DML,
    ),
    (
        "email_outbox",
        """
        email_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        to_address text NOT NULL,
        template text NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz
        """,
        "SELECT, INSERT, UPDATE",
    ),
    (
        "api_keys",
        """
        api_key_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        name text NOT NULL,
        prefix text NOT NULL,
        secret_hash bytea NOT NULL,
        scopes text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz
        """,
        "SELECT, INSERT, UPDATE",
    ),
    (
        "end_users",
        """
        end_user_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        external_id text,
        email text,
        display_name text NOT NULL DEFAULT '',
        time_zone text NOT NULL DEFAULT 'UTC',
        locale text NOT NULL DEFAULT 'en',
        status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (creator_id, external_id),
        UNIQUE (creator_id, email),
        UNIQUE (creator_id, end_user_id)
        """,
        DML,
    ),
    (
        "enrolments",
        """
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        end_user_id uuid NOT NULL,
        program_id uuid NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'left')),
        enrolled_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (end_user_id, program_id),
        FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
            ON DELETE CASCADE,
        FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
            ON DELETE CASCADE
        """,
        DML,
    ),
    (
        "consents",
        """
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        end_user_id uuid NOT NULL,
        channel text NOT NULL
            CHECK (channel IN ('web', 'telegram', 'whatsapp', 'sms', 'email', 'slack')),
        granted boolean NOT NULL,
        address text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (end_user_id, channel),
        FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
            ON DELETE CASCADE
        """,
        DML,
    ),
    (
        "conversations",
        """
        conversation_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        program_id uuid NOT NULL,
        end_user_id uuid NOT NULL,
        channel text NOT NULL DEFAULT 'web',
        ai_paused boolean NOT NULL DEFAULT false,
        paused_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_message_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (program_id, end_user_id, channel),
        UNIQUE (creator_id, conversation_id),
        FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
            ON DELETE CASCADE,
        FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
            ON DELETE CASCADE
        """,
        "SELECT, INSERT, UPDATE",
    ),
    (
        "messages",
        """
        message_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
        conversation_id uuid NOT NULL,
        program_id uuid NOT NULL,
        end_user_id uuid NOT NULL,
        direction text NOT NULL CHECK (direction IN ('in', 'out')),
        author text NOT NULL CHECK (author IN ('end_user', 'ai', 'creator', 'system')),
        kind text NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'check_in', 'nudge')),
        body text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (creator_id, conversation_id)
            REFERENCES conversations (creator_id, conversation_id) ON DELETE CASCADE
        """,
        "SELECT, INSERT",
    ),
]

# Indexes lead with creator_id: the RLS predicate (creator_id = current tenant) then becomes
# an index condition instead of a filter or a second index to AND with.
INDEXES = [
    "CREATE INDEX creator_accounts_creator ON creator_accounts (creator_id)",
    "CREATE INDEX api_keys_creator ON api_keys (creator_id)",
    "CREATE INDEX end_users_page ON end_users (creator_id, created_at, end_user_id)",
    "CREATE INDEX enrolments_program ON enrolments (creator_id, program_id)",
    "CREATE INDEX conversations_page"
    " ON conversations (creator_id, last_message_at DESC, conversation_id DESC)",
    "CREATE INDEX conversations_end_user ON conversations (creator_id, end_user_id)",
    "CREATE INDEX messages_conversation ON messages (creator_id, conversation_id, message_id)",
    "CREATE INDEX messages_program_day ON messages (creator_id, program_id, created_at)",
]


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    # Foreign keys carry the tenant, so no row can point at another tenant's row (foreign
    # key checks do not see RLS, composite keys make them tenant-aware).
    op.execute(
        "ALTER TABLE programs ADD CONSTRAINT programs_tenant_key UNIQUE (creator_id, program_id)"
    )
    for table, columns, privileges in TABLES:
        op.execute(f"CREATE TABLE {table} ({columns})")
        for statement in tenant_table(table, runtime_role, privileges=privileges):
            op.execute(statement)
    for statement in INDEXES:
        op.execute(statement)

    # ---------------------------------------------------------------- directories
    op.execute(
        """
        CREATE TABLE tenant_directory (
            name text PRIMARY KEY,
            creator_id uuid NOT NULL UNIQUE
        )
        """
    )
    op.execute(
        """
        CREATE TABLE login_directory (
            email text PRIMARY KEY,
            creator_id uuid NOT NULL,
            account_id uuid NOT NULL UNIQUE
        )
        """
    )
    op.execute("REVOKE ALL ON tenant_directory, login_directory FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_tenant_directory() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM public.tenant_directory WHERE creator_id = OLD.creator_id;
            RETURN OLD;
          END IF;
          INSERT INTO public.tenant_directory (name, creator_id) VALUES (NEW.name, NEW.creator_id)
          ON CONFLICT (creator_id) DO UPDATE SET name = EXCLUDED.name;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tenant_directory_sync AFTER INSERT OR UPDATE OF name OR DELETE"
        " ON creators FOR EACH ROW EXECUTE FUNCTION sync_tenant_directory()"
    )
    op.execute(
        """
        CREATE FUNCTION sync_login_directory() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM public.login_directory WHERE account_id = OLD.account_id;
            RETURN OLD;
          END IF;
          IF TG_OP = 'UPDATE' THEN
            DELETE FROM public.login_directory WHERE account_id = OLD.account_id;
          END IF;
          INSERT INTO public.login_directory (email, creator_id, account_id)
          VALUES (lower(NEW.email), NEW.creator_id, NEW.account_id);
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER login_directory_sync AFTER INSERT OR UPDATE OF email OR DELETE"
        " ON creator_accounts FOR EACH ROW EXECUTE FUNCTION sync_login_directory()"
    )
    # One exact key in, one tenant id out; nothing to enumerate.
    op.execute(
        """
        CREATE FUNCTION tenant_for_name(p_name text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ SELECT creator_id FROM public.tenant_directory WHERE name = p_name $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION tenant_for_login(p_email text) RETURNS uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ SELECT creator_id FROM public.login_directory WHERE email = lower(p_email) $$
        """
    )
    for function in (
        "sync_tenant_directory()",
        "sync_login_directory()",
        "tenant_for_name(text)",
        "tenant_for_login(text)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_for_name(text) TO {runtime_role}")
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_for_login(text) TO {runtime_role}")
    # Creators that existed before this migration: the owner reads them without RLS once.
    op.execute("ALTER TABLE creators NO FORCE ROW LEVEL SECURITY")
    op.execute("INSERT INTO tenant_directory SELECT name, creator_id FROM creators")
    op.execute("ALTER TABLE creators FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("DROP TRIGGER tenant_directory_sync ON creators")
    op.execute("DROP FUNCTION tenant_for_name(text)")
    op.execute("DROP FUNCTION tenant_for_login(text)")
    for table, _columns, _privileges in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
    op.execute("ALTER TABLE programs DROP CONSTRAINT programs_tenant_key")
    op.execute("DROP FUNCTION sync_login_directory()")
    op.execute("DROP FUNCTION sync_tenant_directory()")
    op.execute("DROP TABLE login_directory")
    op.execute("DROP TABLE tenant_directory")
