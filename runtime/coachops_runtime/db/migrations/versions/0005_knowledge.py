"""Knowledge: the documents a program's coach retrieves from, and a queue of their work.

``knowledge_documents`` is a tenant table (forced RLS, the two tenant policies). One row
per source: ``origin`` 'spec' (written by the operator from ``spec.knowledge``) or
'upload' (written by the runtime's API). The content is kept as bytes with its sha256, so
a re-read of the same source changes nothing. ``state`` moves pending -> ingesting ->
ready | failed; 'deleting' marks a removed document whose vectors the worker still has
to delete before it deletes the row. A name is unique per program and origin among the
documents that are not being deleted.

As for e-mail (0004), the worker must find due work of every tenant before it can name
one: ``knowledge_due`` holds ``(document_id, creator_id, due_at)`` of the documents in
pending, ingesting or deleting, kept by a trigger owned by the schema owner; no role but
the owner has a grant on it. ``claim_due_knowledge()`` (SECURITY DEFINER, executable by
the shared runtime role only) locks the earliest due entry with ``FOR UPDATE SKIP
LOCKED``; the worker keeps that transaction open while it ingests, so a second worker
skips the document, and a worker that dies releases it with its connection. A write that
only moves a document between due states leaves its entry alone, so it never waits for
that lock; the worker records the outcome (ready, failed, a retry's due time) in the
claiming transaction itself. Deleting a document (or its program) skips an entry a worker
holds; ``forget_due_knowledge()`` lets the worker drop it when it finds the row gone.

Revision ID: 0005
Revises: 0004
"""

from alembic import context, op

from coachops_crds.rls import TENANT_SETTING
from coachops_runtime.db.tenancy_sql import tenant_table

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE knowledge_documents (
            document_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
            origin text NOT NULL CHECK (origin IN ('spec', 'upload')),
            content_type text NOT NULL,
            content bytea NOT NULL,
            size_bytes integer NOT NULL,
            sha256 text NOT NULL,
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'ingesting', 'ready', 'failed', 'deleting')),
            progress real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
            chunk_count integer NOT NULL DEFAULT 0,
            error text,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            ingested_at timestamptz,
            UNIQUE (creator_id, document_id),
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    for statement in tenant_table(
        "knowledge_documents", runtime_role, privileges="SELECT, INSERT, UPDATE, DELETE"
    ):
        op.execute(statement)
    op.execute(
        "CREATE UNIQUE INDEX knowledge_documents_name"
        " ON knowledge_documents (creator_id, program_id, origin, name)"
        " WHERE state <> 'deleting'"
    )
    op.execute(
        "CREATE INDEX knowledge_documents_page"
        " ON knowledge_documents (creator_id, program_id, created_at, document_id)"
    )
    op.execute(
        """
        CREATE TABLE knowledge_due (
            document_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL,
            due_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX knowledge_due_at ON knowledge_due (due_at)")
    op.execute("REVOKE ALL ON knowledge_due FROM PUBLIC")
    op.execute(
        """
        CREATE FUNCTION sync_knowledge_due() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$ BEGIN
          IF TG_OP = 'DELETE' THEN
            -- A worker ingesting the document holds its entry locked: skip it rather than
            -- wait (the program's deletion would wait for a whole ingestion, or deadlock
            -- with the worker's progress write); the worker forgets it when it finds no row.
            DELETE FROM public.knowledge_due WHERE document_id IN (
              SELECT document_id FROM public.knowledge_due
              WHERE document_id = OLD.document_id FOR UPDATE SKIP LOCKED);
            RETURN OLD;
          END IF;
          -- Between due states with the same due time the entry stays as it is, without
          -- touching it: a worker holds it locked while it ingests, and an upload's or the
          -- operator's write (state only) must not wait for that.
          IF TG_OP = 'UPDATE' AND OLD.state IN ('pending', 'ingesting', 'deleting')
             AND NEW.state IN ('pending', 'ingesting', 'deleting')
             AND NEW.next_attempt_at = OLD.next_attempt_at THEN
            RETURN NEW;
          END IF;
          IF NEW.state IN ('ready', 'failed') THEN
            DELETE FROM public.knowledge_due WHERE document_id = NEW.document_id;
          ELSE
            INSERT INTO public.knowledge_due (document_id, creator_id, due_at)
            VALUES (NEW.document_id, NEW.creator_id, NEW.next_attempt_at)
            ON CONFLICT (document_id) DO UPDATE SET due_at = EXCLUDED.due_at;
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER knowledge_due_sync"
        " AFTER INSERT OR UPDATE OF state, next_attempt_at OR DELETE"
        " ON knowledge_documents FOR EACH ROW EXECUTE FUNCTION sync_knowledge_due()"
    )
    op.execute(
        """
        CREATE FUNCTION claim_due_knowledge() RETURNS TABLE (creator_id uuid, document_id uuid)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          SELECT d.creator_id, d.document_id FROM public.knowledge_due d
          WHERE d.due_at <= now() ORDER BY d.due_at LIMIT 1
          FOR UPDATE SKIP LOCKED
        $$
        """
    )
    # The entry of a document that no longer exists in the caller's tenant (deleted while
    # a worker held the entry). Under the owner's forced RLS the document is looked up in
    # the tenant the caller bound, and only that tenant's entries can go.
    op.execute(
        f"""
        CREATE FUNCTION forget_due_knowledge(p_document uuid) RETURNS void
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
        AS $$
          DELETE FROM public.knowledge_due d
          WHERE d.document_id = p_document
            AND d.creator_id = nullif(current_setting('{TENANT_SETTING}', true), '')::uuid
            AND NOT EXISTS (
              SELECT 1 FROM public.knowledge_documents k WHERE k.document_id = p_document)
        $$
        """
    )
    for function in (
        "sync_knowledge_due()",
        "claim_due_knowledge()",
        "forget_due_knowledge(uuid)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_due_knowledge() TO {runtime_role}")
    op.execute(f"GRANT EXECUTE ON FUNCTION forget_due_knowledge(uuid) TO {runtime_role}")


def downgrade() -> None:
    op.execute("DROP TRIGGER knowledge_due_sync ON knowledge_documents")
    op.execute("DROP FUNCTION forget_due_knowledge(uuid)")
    op.execute("DROP FUNCTION claim_due_knowledge()")
    op.execute("DROP FUNCTION sync_knowledge_due()")
    op.execute("DROP TABLE knowledge_due")
    op.execute("DROP TABLE knowledge_documents")
