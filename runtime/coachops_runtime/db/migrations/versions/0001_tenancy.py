"""Tenancy: tenant context, creators and programs under forced row-level security.

Revision ID: 0001
Revises:
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import (
    CONTEXT_GROUP,
    TENANT_GROUP,
    ensure_group,
    tenant_table,
)

revision = "0001"
down_revision = None


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    for group in (TENANT_GROUP, CONTEXT_GROUP):
        op.execute(ensure_group(group))
    # The roles that name the tenant per transaction (coachops_crds.rls).
    op.execute(f"GRANT {CONTEXT_GROUP} TO current_user, {runtime_role}")
    # Who may name the tenant with SET LOCAL. Nobody else can: fail closed.
    # current_tenant_id() names these tables with their schema and puts pg_temp last on its
    # search_path: a role that creates a temporary table of the same name in its own
    # session must not be able to shadow them (the classic SECURITY DEFINER pitfall).
    op.execute("CREATE TABLE tenant_context_roles (role_name name PRIMARY KEY)")
    op.execute(f"INSERT INTO tenant_context_roles VALUES (current_user), ('{runtime_role}')")
    # Per-creator login roles and the one tenant each is bound to.
    op.execute(
        """
        CREATE TABLE tenant_db_roles (
            role_name name PRIMARY KEY,
            creator_id uuid NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION current_tenant_id() RETURNS uuid
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp
        AS $$
        -- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function cannot be inlined and is
        -- planned again by every statement that calls it; PL/pgSQL caches its plans per
        -- session, which keeps the RLS predicate cheap.
        BEGIN
          IF EXISTS (SELECT 1 FROM public.tenant_context_roles
                     WHERE role_name = session_user) THEN
            RETURN nullif(current_setting('coachops.tenant_id', true), '')::uuid;
          END IF;
          RETURN (SELECT creator_id FROM public.tenant_db_roles WHERE role_name = session_user);
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION current_tenant_id() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION current_tenant_id() TO {runtime_role}, {TENANT_GROUP}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {runtime_role}, {TENANT_GROUP}")

    op.execute(
        """
        CREATE TABLE creators (
            creator_id uuid PRIMARY KEY,
            name text NOT NULL UNIQUE,
            display_name text NOT NULL,
            contact_email text NOT NULL,
            plan jsonb NOT NULL,
            isolation text NOT NULL CHECK (isolation IN ('shared', 'dedicated')),
            suspended boolean NOT NULL DEFAULT false,
            generation bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE programs (
            program_id uuid PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            name text NOT NULL,
            title text NOT NULL,
            spec jsonb NOT NULL,
            generation bigint NOT NULL DEFAULT 0,
            -- Set when the CoachingProgram is deleted and its creator's reclaimPolicy is
            -- Retain: the row and its conversations stay, the runtime ignores the program.
            deleted_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (creator_id, name)
        )
        """
    )
    # The operator (schema owner) writes configuration; runtimes only read it.
    for table in ("creators", "programs"):
        for statement in tenant_table(table, runtime_role, privileges="SELECT"):
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE programs")
    op.execute("DROP TABLE creators")
    op.execute("DROP FUNCTION current_tenant_id()")
    op.execute("DROP TABLE tenant_db_roles")
    op.execute("DROP TABLE tenant_context_roles")
