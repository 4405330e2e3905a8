"""The tenant behind a request: loaded under RLS, cached briefly, suspension enforced."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from coachops_crds.constants import creator_namespace, tenant_redis_prefix
from coachops_crds.models import Plan
from coachops_runtime.container import Runtime
from coachops_runtime.creators.repository import CreatorRepository
from coachops_runtime.creators.schemas import (
    AiUsagePublic,
    CreatorPublic,
    PlanPublic,
    Tenant,
    UsagePublic,
)
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.ratelimit import CacheUnavailableError, Limiter


def month_key(tenant: Tenant) -> str:
    """The monthly AI message counter, under the tenant's Redis prefix."""
    return f"{tenant_redis_prefix(tenant.name)}quota:messages:{datetime.now(UTC):%Y%m}"


async def load_tenant(runtime: Runtime, session: Session) -> Tenant | None:
    """The tenant the session is bound to; ``None`` when it does not exist (any more)."""
    assert session.tenant_id is not None
    cached = runtime.cached_tenant(session.tenant_id)
    if isinstance(cached, Tenant):
        return cached
    row = await CreatorRepository(session).current()
    # A dedicated runtime's role sees its own tenant whatever the session names, so the row
    # must be the named tenant: another tenant's valid token binds to nothing here.
    if row is None or row["creator_id"] != session.tenant_id:
        return None
    try:
        plan = Plan.model_validate(row["plan"] or {})
    except ValidationError:
        plan = Plan()
    tenant = Tenant(
        creator_id=row["creator_id"],
        name=row["name"],
        display_name=row["display_name"],
        contact_email=row["contact_email"],
        plan=plan,
        suspended=row["suspended"],
    )
    runtime.cache_tenant(session.tenant_id, tenant)
    return tenant


def public(tenant: Tenant) -> CreatorPublic:
    return CreatorPublic(
        creator_id=tenant.creator_id,
        name=tenant.name,
        display_name=tenant.display_name,
        namespace=creator_namespace(tenant.name),
        plan=PlanPublic(
            name=tenant.plan.name,
            max_programs=tenant.plan.max_programs,
            max_end_users=tenant.plan.max_end_users,
            messages_per_month=tenant.plan.messages_per_month,
            requests_per_second=tenant.plan.requests_per_second,
        ),
        suspended=tenant.suspended,
    )


async def usage(session: Session, limiter: Limiter, tenant: Tenant) -> UsagePublic:
    repository = CreatorRepository(session)
    counts = await repository.counts()
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ai = await repository.ai_usage(month)
    try:
        used: int | None = await limiter.quota_used(month_key(tenant))
    except CacheUnavailableError:
        used = None
    return UsagePublic(
        month=f"{month:%Y-%m}",
        messages_used=used,
        messages_per_month=tenant.plan.messages_per_month,
        programs=int(counts["programs"]) if counts else 0,
        max_programs=tenant.plan.max_programs,
        end_users=int(counts["end_users"]) if counts else 0,
        max_end_users=tenant.plan.max_end_users,
        ai=AiUsagePublic(**ai),
    )
