"""Proactive engine: one schedule row per (program, end user, check-in | nudge | goal), the
decisions taken on them, and the cross-tenant queue of due schedules.

* ``proactive_schedules`` (tenant table): ``due_at`` is when the scheduler looks at the row
  next; ``occurrence``/``occurrence_key`` the occurrence pending (NULL: to be planned from
  the program's current spec); ``basis`` what that occurrence was computed from (cron and
  zone, silence start, target date), so a changed program or time zone is noticed.
* ``proactive_decisions`` (tenant table): every send, deferral and skip with its reason.
  Its partial unique index on (program, end user, kind, item, occurrence key) WHERE
  outcome = 'sent' is the idempotency key of a proactive send.
* ``proactive_due`` (owner only) mirrors (schedule, tenant, due_at) of every schedule;
  ``claim_proactive(p_now, p_limit)`` (SECURITY DEFINER) locks a batch of due ones with
  ``FOR UPDATE SKIP LOCKED``. The time is a parameter: the engine's clock decides what is
  due, never PostgreSQL's ``now()``.
* Triggers (invoker's rights, so rows are written under the writer's tenant) create and
  re-plan schedules: an enrolment, a program's ``spec.proactive`` change, an end user's
  time zone change and a goal's target date or status change set ``due_at`` to
  ``-infinity``, which the scheduler takes as "plan this now".

Revision ID: 0010
Revises: 0009
"""

from alembic import context, op

from coachops_runtime.db.tenancy_sql import TENANT_GROUP, tenant_table

revision = "0010"
down_revision = "0009"

# The items of a program's spec that get a schedule per enrolled end user; tolerant of a
# spec of any shape (the operator's write must never fail on it).
_ITEMS = """
CREATE FUNCTION proactive_items(p_spec jsonb) RETURNS TABLE (kind text, item text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT 'check_in', c->>'name'
  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_spec->'proactive'->'checkIns') = 'array'
                                 THEN p_spec->'proactive'->'checkIns' ELSE '[]' END) c
  WHERE jsonb_typeof(c) = 'object' AND coalesce(c->>'name', '') <> ''
  UNION
  SELECT 'nudge', ''
  WHERE jsonb_typeof(p_spec->'proactive'->'inactivityNudgeHours') = 'number'
    AND (p_spec->'proactive'->>'inactivityNudgeHours')::numeric > 0
$$
"""

_ENROLMENT = """
CREATE FUNCTION proactive_on_enrolment() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$ BEGIN
  INSERT INTO public.proactive_schedules (creator_id, program_id, end_user_id, kind, item)
  SELECT NEW.creator_id, NEW.program_id, NEW.end_user_id, i.kind, i.item
  FROM public.programs p, public.proactive_items(p.spec) i
  WHERE p.program_id = NEW.program_id
  ON CONFLICT (program_id, end_user_id, kind, item) DO UPDATE SET due_at = '-infinity';
  INSERT INTO public.proactive_schedules (creator_id, program_id, end_user_id, kind, item)
  SELECT g.creator_id, g.program_id, g.end_user_id, 'goal', g.goal_id::text
  FROM public.goals g
  WHERE g.end_user_id = NEW.end_user_id AND g.program_id = NEW.program_id
    AND g.status = 'active' AND g.target_date IS NOT NULL
  ON CONFLICT (program_id, end_user_id, kind, item) DO UPDATE SET due_at = '-infinity';
  RETURN NEW;
END $$
"""

_PROGRAM = """
CREATE FUNCTION proactive_on_program() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$ BEGIN
  IF NEW.spec->'proactive' IS NOT DISTINCT FROM OLD.spec->'proactive'
     AND NEW.deleted_at IS NOT DISTINCT FROM OLD.deleted_at THEN
    RETURN NEW;
  END IF;
  UPDATE public.proactive_schedules SET due_at = '-infinity'
  WHERE program_id = NEW.program_id AND kind <> 'goal';
  INSERT INTO public.proactive_schedules (creator_id, program_id, end_user_id, kind, item)
  SELECT n.creator_id, n.program_id, n.end_user_id, i.kind, i.item
  FROM public.enrolments n, public.proactive_items(NEW.spec) i
  WHERE n.program_id = NEW.program_id AND n.status = 'active' AND NEW.deleted_at IS NULL
  ON CONFLICT (program_id, end_user_id, kind, item) DO NOTHING;
  RETURN NEW;
END $$
"""

_END_USER = """
CREATE FUNCTION proactive_on_time_zone() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$ BEGIN
  UPDATE public.proactive_schedules SET due_at = '-infinity'
  WHERE end_user_id = NEW.end_user_id;
  RETURN NEW;
END $$
"""

_GOAL = """
CREATE FUNCTION proactive_on_goal() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$ BEGIN
  INSERT INTO public.proactive_schedules (creator_id, program_id, end_user_id, kind, item)
  SELECT NEW.creator_id, NEW.program_id, NEW.end_user_id, 'goal', NEW.goal_id::text
  FROM public.enrolments n
  WHERE n.end_user_id = NEW.end_user_id AND n.program_id = NEW.program_id
    AND NEW.status = 'active' AND NEW.target_date IS NOT NULL
  ON CONFLICT (program_id, end_user_id, kind, item) DO UPDATE SET due_at = '-infinity';
  RETURN NEW;
END $$
"""

_SYNC_DUE = """
CREATE FUNCTION sync_proactive_due() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$ BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM public.proactive_due WHERE schedule_id = OLD.schedule_id;
    RETURN OLD;
  END IF;
  INSERT INTO public.proactive_due (schedule_id, creator_id, due_at)
  VALUES (NEW.schedule_id, NEW.creator_id, NEW.due_at)
  ON CONFLICT (schedule_id) DO UPDATE SET due_at = EXCLUDED.due_at;
  RETURN NEW;
END $$
"""

# The end users of a claimed batch, locked in one order (their keys sorted) so two batches
# sharing end users wait for each other rather than deadlock; maxPerDay is counted after.
_LOCK = """
CREATE FUNCTION proactive_lock_end_users(p_programs uuid[], p_end_users uuid[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  k bigint;
BEGIN
  FOR k IN
    SELECT DISTINCT hashtextextended(p::text || u::text, 0)
    FROM unnest(p_programs, p_end_users) AS t(p, u) ORDER BY 1
  LOOP
    PERFORM pg_advisory_xact_lock(k);
  END LOOP;
END $$
"""

_CLAIM = """
CREATE FUNCTION claim_proactive(p_now timestamptz, p_limit integer)
RETURNS TABLE (creator_id uuid, schedule_id bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT d.creator_id, d.schedule_id FROM public.proactive_due d
  WHERE d.due_at <= p_now
  ORDER BY d.due_at, d.schedule_id LIMIT p_limit
  FOR UPDATE SKIP LOCKED
$$
"""


def upgrade() -> None:
    runtime_role = context.config.attributes.get("runtime_role", "coachops_runtime")
    op.execute(
        """
        CREATE TABLE proactive_schedules (
            schedule_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            end_user_id uuid NOT NULL,
            kind text NOT NULL CHECK (kind IN ('check_in', 'nudge', 'goal')),
            item text NOT NULL,
            due_at timestamptz NOT NULL DEFAULT '-infinity',
            occurrence timestamptz,
            occurrence_key text,
            basis text NOT NULL DEFAULT '',
            deferred boolean NOT NULL DEFAULT false,
            send_now boolean NOT NULL DEFAULT false,
            last_occurrence timestamptz,
            last_key text,
            UNIQUE (program_id, end_user_id, kind, item),
            UNIQUE (creator_id, schedule_id),
            FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
                ON DELETE CASCADE,
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE INDEX proactive_schedules_upcoming"
        " ON proactive_schedules (creator_id, program_id, due_at, schedule_id)"
    )
    op.execute(
        "CREATE INDEX proactive_schedules_end_user ON proactive_schedules (creator_id, end_user_id)"
    )
    op.execute(
        """
        CREATE TABLE proactive_decisions (
            decision_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            creator_id uuid NOT NULL REFERENCES creators ON DELETE CASCADE,
            program_id uuid NOT NULL,
            end_user_id uuid NOT NULL,
            schedule_id bigint,
            kind text NOT NULL CHECK (kind IN ('check_in', 'nudge', 'goal')),
            item text NOT NULL,
            occurrence timestamptz,
            occurrence_key text NOT NULL DEFAULT '',
            outcome text NOT NULL CHECK (outcome IN ('sent', 'deferred', 'skipped')),
            reason text NOT NULL,
            channel text,
            message_id bigint,
            local_day date NOT NULL,
            decided_at timestamptz NOT NULL,
            FOREIGN KEY (creator_id, end_user_id) REFERENCES end_users (creator_id, end_user_id)
                ON DELETE CASCADE,
            FOREIGN KEY (creator_id, program_id) REFERENCES programs (creator_id, program_id)
                ON DELETE CASCADE
        )
        """
    )
    # The idempotency key of a proactive send: (end user, check-in, local date) and the like.
    op.execute(
        "CREATE UNIQUE INDEX proactive_decisions_once ON proactive_decisions"
        " (program_id, end_user_id, kind, item, occurrence_key) WHERE outcome = 'sent'"
    )
    op.execute(
        "CREATE INDEX proactive_decisions_recent"
        " ON proactive_decisions (creator_id, decided_at DESC, decision_id DESC)"
    )
    op.execute(
        "CREATE INDEX proactive_decisions_day"
        " ON proactive_decisions (creator_id, end_user_id, program_id, local_day)"
        " WHERE outcome = 'sent'"
    )
    for table, privileges in (
        ("proactive_schedules", "SELECT, INSERT, UPDATE, DELETE"),
        ("proactive_decisions", "SELECT, INSERT, UPDATE"),
    ):
        for statement in tenant_table(table, runtime_role, privileges=privileges):
            op.execute(statement)

    op.execute(
        """
        CREATE TABLE proactive_due (
            schedule_id bigint PRIMARY KEY,
            creator_id uuid NOT NULL,
            due_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX proactive_due_at ON proactive_due (due_at, schedule_id)")
    op.execute("REVOKE ALL ON proactive_due FROM PUBLIC")
    for statement in (_ITEMS, _ENROLMENT, _PROGRAM, _END_USER, _GOAL, _SYNC_DUE, _LOCK, _CLAIM):
        op.execute(statement)
    op.execute(
        "CREATE TRIGGER proactive_due_sync AFTER INSERT OR UPDATE OF due_at OR DELETE"
        " ON proactive_schedules FOR EACH ROW EXECUTE FUNCTION sync_proactive_due()"
    )
    op.execute(
        "CREATE TRIGGER proactive_enrolment AFTER INSERT OR UPDATE OF status ON enrolments"
        " FOR EACH ROW EXECUTE FUNCTION proactive_on_enrolment()"
    )
    op.execute(
        "CREATE TRIGGER proactive_program AFTER UPDATE OF spec, deleted_at ON programs"
        " FOR EACH ROW EXECUTE FUNCTION proactive_on_program()"
    )
    op.execute(
        "CREATE TRIGGER proactive_time_zone AFTER UPDATE OF time_zone ON end_users"
        " FOR EACH ROW WHEN (NEW.time_zone IS DISTINCT FROM OLD.time_zone)"
        " EXECUTE FUNCTION proactive_on_time_zone()"
    )
    op.execute(
        "CREATE TRIGGER proactive_goal AFTER INSERT OR UPDATE OF target_date, status ON goals"
        " FOR EACH ROW EXECUTE FUNCTION proactive_on_goal()"
    )
    for function in ("sync_proactive_due()", "claim_proactive(timestamptz, integer)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_proactive(timestamptz, integer) TO {runtime_role}")
    # The schedule triggers run with the writer's rights: tenant roles write enrolments,
    # goals and end users in a dedicated runtime.
    for function in (
        "proactive_items(jsonb)",
        "proactive_on_enrolment()",
        "proactive_on_program()",
        "proactive_on_time_zone()",
        "proactive_on_goal()",
    ):
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {runtime_role}, {TENANT_GROUP}")


def downgrade() -> None:
    op.execute("DROP TRIGGER proactive_goal ON goals")
    op.execute("DROP TRIGGER proactive_time_zone ON end_users")
    op.execute("DROP TRIGGER proactive_program ON programs")
    op.execute("DROP TRIGGER proactive_enrolment ON enrolments")
    op.execute("DROP TABLE proactive_due, proactive_decisions, proactive_schedules")
    for function in (
        "claim_proactive(timestamptz, integer)",
        "proactive_lock_end_users(uuid[], uuid[])",
        "sync_proactive_due()",
        "proactive_on_goal()",
        "proactive_on_time_zone()",
        "proactive_on_program()",
        "proactive_on_enrolment()",
        "proactive_items(jsonb)",
    ):
        op.execute(f"DROP FUNCTION {function}")
