"""End users: invite, enrol, consent, search and page, update profiles."""

from __future__ import annotations

import json
import uuid
from typing import Any

from coachops_runtime.auth.dependencies import CreatorContext
from coachops_runtime.consent import service as consent
from coachops_runtime.endusers.repository import EndUserRepository
from coachops_runtime.endusers.schemas import (
    Channel,
    ConsentPublic,
    ConsentUpdate,
    EndUserCreate,
    EndUserDetail,
    EndUserPublic,
    EndUserUpdate,
    EnrolmentPublic,
)
from coachops_runtime.kit.db import IntegrityError
from coachops_runtime.kit.errors import Conflict, Forbidden, NotFound
from coachops_runtime.kit.pagination import Page, decode_keyset, encode_keyset
from coachops_runtime.programs.repository import ProgramRepository

EndUserPage = Page[EndUserPublic]


async def _require_program(context: CreatorContext, program_id: uuid.UUID) -> None:
    if not await ProgramRepository(context.session).exists(program_id):
        raise NotFound("no such program")


async def _require_end_user(repo: EndUserRepository, end_user_id: uuid.UUID) -> Any:
    row = await repo.get(end_user_id)
    if row is None:
        raise NotFound("no such end user")
    return row


async def invite(context: CreatorContext, data: EndUserCreate) -> EndUserDetail:
    repo = EndUserRepository(context.session)
    plan = context.tenant.plan
    if await repo.count() >= plan.max_end_users:
        raise Forbidden(f"the {plan.name} plan allows {plan.max_end_users} end users")
    for program_id in data.program_ids:
        await _require_program(context, program_id)
    values = data.model_dump(exclude={"program_ids"})
    try:
        async with context.session.savepoint():
            row = await repo.insert(context.creator_id, values)
    except IntegrityError as error:
        raise Conflict("an end user with that e-mail or external id exists") from error
    for program_id in dict.fromkeys(data.program_ids):
        await repo.enrol(context.creator_id, row["end_user_id"], program_id)
    if data.email:
        await repo.queue_email(
            context.creator_id,
            data.email,
            "end_user_invite",
            json.dumps(
                {"end_user_id": str(row["end_user_id"]), "creator": context.tenant.display_name}
            ),
        )
    return await detail(context, row["end_user_id"])


async def detail(context: CreatorContext, end_user_id: uuid.UUID) -> EndUserDetail:
    repo = EndUserRepository(context.session)
    row = await _require_end_user(repo, end_user_id)
    return EndUserDetail(
        **row,
        enrolments=[EnrolmentPublic(**r) for r in await repo.enrolments(end_user_id)],
        consents=[ConsentPublic(**r) for r in await repo.consents(end_user_id)],
    )


async def page(
    context: CreatorContext,
    *,
    limit: int,
    cursor: str | None,
    search: str | None,
    program_id: uuid.UUID | None,
) -> EndUserPage:
    after = decode_keyset(cursor) if cursor else None
    rows = await EndUserRepository(context.session).page(
        limit=limit + 1, after=after, search=search, program_id=program_id
    )
    items = [EndUserPublic(**row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_keyset(last["created_at"], last["end_user_id"])
    return EndUserPage(items=items, next_cursor=next_cursor)


async def update(
    context: CreatorContext, end_user_id: uuid.UUID, data: EndUserUpdate
) -> EndUserDetail:
    repo = EndUserRepository(context.session)
    values = data.model_dump(exclude_unset=True)
    await _require_end_user(repo, end_user_id)
    if values:
        try:
            async with context.session.savepoint():
                await repo.update(end_user_id, values)
        except IntegrityError as error:
            raise Conflict("an end user with that e-mail or external id exists") from error
    return await detail(context, end_user_id)


async def enrol(
    context: CreatorContext, end_user_id: uuid.UUID, program_id: uuid.UUID
) -> EnrolmentPublic:
    repo = EndUserRepository(context.session)
    await _require_end_user(repo, end_user_id)
    await _require_program(context, program_id)
    return EnrolmentPublic(**await repo.enrol(context.creator_id, end_user_id, program_id))


async def unenrol(context: CreatorContext, end_user_id: uuid.UUID, program_id: uuid.UUID) -> None:
    if not await EndUserRepository(context.session).unenrol(end_user_id, program_id):
        raise NotFound("no such enrolment")


async def set_consent(
    context: CreatorContext, end_user_id: uuid.UUID, channel: Channel, data: ConsentUpdate
) -> ConsentPublic:
    repo = EndUserRepository(context.session)
    await _require_end_user(repo, end_user_id)
    row = await consent.record_change(
        context.session,
        context.creator_id,
        end_user_id,
        channel,
        granted=data.granted,
        address=data.address,
        source="creator",
        actor_id=context.api_key_id or context.account_id,
    )
    return ConsentPublic(**row)
