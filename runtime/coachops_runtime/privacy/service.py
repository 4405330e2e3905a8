"""Starting exports and erasures, reading their state, and the single-use download."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from coachops_runtime.audit import service as audit
from coachops_runtime.auth.dependencies import CreatorContext, EndUserContext
from coachops_runtime.kit.context import request_id_var
from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import BadRequest, Forbidden, NotFound, Unauthorized
from coachops_runtime.privacy.repository import PrivacyRepository
from coachops_runtime.privacy.schemas import (
    ErasureConfirmation,
    ErasurePublic,
    ExportPublic,
)
from coachops_runtime.privacy.settings import PrivacySettings

DOWNLOAD_PATH = "/v1/export-archives/"
EXPORT_SCOPES = ("endusers:read", "conversations:read")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def creator_actor(context: CreatorContext) -> str:
    if context.api_key_id is not None:
        return f"api_key:{context.api_key_id}"
    return f"account:{context.account_id}"


def export_status_url(export_id: uuid.UUID, end_user_id: uuid.UUID | None) -> str:
    if end_user_id is None:
        return f"/v1/me/exports/{export_id}"
    return f"/v1/end-users/{end_user_id}/exports/{export_id}"


async def _export_public(
    session: Session,
    row: Any,
    *,
    creator_id: uuid.UUID,
    settings: PrivacySettings,
    for_creator: bool,
) -> ExportPublic:
    state = row["state"]
    if state == "pending" and row["started_at"] is not None:
        state = "running"
    columns = set(row.keys())
    public = ExportPublic(
        **{k: row[k] for k in ExportPublic.model_fields if k in columns} | {"state": state},
        status_url=export_status_url(row["export_id"], row["end_user_id"] if for_creator else None),
    )
    if state == "ready":
        if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            public.state = "expired"
            return public
        secret = secrets.token_urlsafe(32)
        expires = await PrivacyRepository(session).set_link(
            row["export_id"], _digest(secret), settings.link_seconds
        )
        token = f"{creator_id.hex}.{row['export_id'].hex}.{secret}"
        # Relative, like the status URL: the API's own path on whatever host serves it.
        public.download_url = f"{DOWNLOAD_PATH}{token}"
        public.download_expires_at = expires
    return public


# ---------------------------------------------------------------------- exports


def check_export_scopes(context: CreatorContext) -> None:
    for scope in EXPORT_SCOPES:
        if scope not in context.scopes:
            raise Forbidden(f"this API key lacks the {scope} scope")


async def start_export(
    session: Session,
    *,
    creator_id: uuid.UUID,
    end_user_id: uuid.UUID,
    fmt: str,
    actor: str,
    reuse: bool,
    settings: PrivacySettings,
    for_creator: bool,
) -> tuple[ExportPublic, bool]:
    """A new export of the person (or, with ``reuse``, the one still open), and whether
    it is new."""
    repo = PrivacyRepository(session)
    if not await repo.end_user_exists(end_user_id):
        raise NotFound("no such end user")
    row = await repo.open_export(end_user_id, fmt) if reuse else None
    created = row is None
    if row is None:
        row = await repo.insert_export(creator_id, end_user_id, fmt, actor, request_id_var.get())
    public = await _export_public(
        session,
        row,
        creator_id=creator_id,
        settings=settings,
        for_creator=for_creator,
    )
    return public, created


async def creator_export(
    context: CreatorContext,
    end_user_id: uuid.UUID,
    fmt: str,
    *,
    reuse: bool,
    settings: PrivacySettings,
) -> ExportPublic:
    check_export_scopes(context)
    public, created = await start_export(
        context.session,
        creator_id=context.creator_id,
        end_user_id=end_user_id,
        fmt=fmt,
        actor=creator_actor(context),
        reuse=reuse,
        settings=settings,
        for_creator=True,
    )
    if created:  # the export's id, never the person's: the audit log outlives erasures
        await audit.record(context, "end_user.export", "export", public.export_id)
    return public


async def own_export(
    context: EndUserContext, fmt: str, *, reuse: bool, settings: PrivacySettings
) -> ExportPublic:
    public, created = await start_export(
        context.session,
        creator_id=context.tenant.creator_id,
        end_user_id=context.end_user_id,
        fmt=fmt,
        actor="end_user",
        reuse=reuse,
        settings=settings,
        for_creator=False,
    )
    if created:
        await audit.record_system(
            context.session,
            context.tenant.creator_id,
            "end_user.export",
            "export",
            public.export_id,
            {"requested_by": "end_user"},
        )
    return public


async def export_status(
    session: Session,
    *,
    creator_id: uuid.UUID,
    export_id: uuid.UUID,
    end_user_id: uuid.UUID,
    settings: PrivacySettings,
    for_creator: bool,
) -> ExportPublic:
    row = await PrivacyRepository(session).export(export_id, end_user_id)
    if row is None:
        raise NotFound("no such export")
    return await _export_public(
        session,
        row,
        creator_id=creator_id,
        settings=settings,
        for_creator=for_creator,
    )


def parse_download_token(token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    try:
        creator_hex, export_hex, secret = token.split(".", 2)
        return uuid.UUID(hex=creator_hex), uuid.UUID(hex=export_hex), secret
    except ValueError as error:  # the token is the link's credential
        raise Unauthorized("not a download link") from error


async def download(session: Session, token: str) -> tuple[bytes, str, uuid.UUID]:
    """(archive, format, export id) of a live single-use link; the archive is dropped."""
    creator_id, export_id, secret = parse_download_token(token)
    await session.set_tenant(creator_id)
    repo = PrivacyRepository(session)
    row = await repo.archive_for_download(export_id)
    if (
        row is None
        or row["link_hash"] is None
        or not hmac.compare_digest(bytes(row["link_hash"]), _digest(secret))
        or not row["live"]
    ):
        raise NotFound("no such download link, or it expired or was used")
    await repo.mark_downloaded(export_id)
    return bytes(row["archive"]), str(row["format"]), export_id


# ---------------------------------------------------------------------- erasures


def erasure_public(row: Any, *, done: bool = False) -> ErasurePublic:
    if done:
        return ErasurePublic(
            erasure_id=row["erasure_id"],
            state="done",
            steps={k: {"removed": v, "done": True} for k, v in row["removed"].items()},
            requested_by=row["requested_by"],
            request_id=row["request_id"],
            requested_at=row["requested_at"],
            completed_at=row["completed_at"],
            status_url=f"/v1/erasures/{row['erasure_id']}",
        )
    state = row["state"]
    if state == "pending" and row["started_at"] is not None:
        state = "running"
    return ErasurePublic(
        erasure_id=row["erasure_id"],
        state=state,
        steps=row["steps"] or {},
        error=row["error"],
        requested_at=row["created_at"],
        status_url=f"/v1/erasures/{row['erasure_id']}",
    )


async def request_erasure(
    session: Session, *, creator_id: uuid.UUID, end_user_id: uuid.UUID, actor: str
) -> ErasurePublic:
    repo = PrivacyRepository(session)
    if not await repo.end_user_exists(end_user_id):
        raise NotFound("no such end user")
    row = await repo.request_erasure(creator_id, end_user_id, actor, request_id_var.get())
    return erasure_public(row)


async def creator_erasure(context: CreatorContext, end_user_id: uuid.UUID) -> ErasurePublic:
    public = await request_erasure(
        context.session,
        creator_id=context.creator_id,
        end_user_id=end_user_id,
        actor=creator_actor(context),
    )
    await audit.record(context, "end_user.erase", "erasure", public.erasure_id)
    return public


async def erasure_status(session: Session, erasure_id: uuid.UUID) -> ErasurePublic:
    repo = PrivacyRepository(session)
    row = await repo.erasure(erasure_id)
    if row is not None:
        return erasure_public(row)
    tombstone = await repo.tombstone(erasure_id)
    if tombstone is None:
        raise NotFound("no such erasure")
    return erasure_public(tombstone, done=True)


async def ask_confirmation(
    context: EndUserContext, settings: PrivacySettings
) -> ErasureConfirmation:
    repo = PrivacyRepository(context.session)
    if not await repo.end_user_exists(context.end_user_id):
        raise NotFound("no such end user")
    code = secrets.token_urlsafe(24)
    row = await repo.await_confirmation(
        context.tenant.creator_id,
        context.end_user_id,
        _digest(code),
        settings.confirm_seconds,
        request_id_var.get(),
    )
    if row is None:
        raise BadRequest("your erasure is already under way")
    return ErasureConfirmation(confirmation=code, expires_at=row["confirm_by"])


async def confirmed_erasure(context: EndUserContext, confirmation: str) -> ErasurePublic:
    repo = PrivacyRepository(context.session)
    row = await repo.unconfirmed(context.end_user_id)
    if (
        row is None
        or row["confirmation_hash"] is None
        or not hmac.compare_digest(bytes(row["confirmation_hash"]), _digest(confirmation))
        or not row["live"]
    ):
        raise Forbidden(
            "invalid or expired confirmation: ask for one with POST /v1/me/erasure-confirmation"
        )
    public = await request_erasure(
        context.session,
        creator_id=context.tenant.creator_id,
        end_user_id=context.end_user_id,
        actor="end_user",
    )
    await audit.record_system(
        context.session,
        context.tenant.creator_id,
        "end_user.erase",
        "erasure",
        public.erasure_id,
        {"requested_by": "end_user"},
    )
    return public
