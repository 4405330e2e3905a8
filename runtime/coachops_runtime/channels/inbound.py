"""Inbound webhooks: tenant found, signature verified, then parsed, deduplicated, stored.

Order matters: the (program, channel) names its tenant through the webhook directory,
the tenant's encrypted credentials are read under RLS and decrypted, and the signature
is checked on the raw body before any of it is parsed. A request that fails gets 401 and
leaves nothing behind. A verified one is handled in the request's one transaction: each
message's provider id is recorded (a duplicate stops there), the sender is mapped to an
end user (enrolled or ignored per the program's ``unknownSenders``), and the message is
stored with its reply job by the same service the web API uses (``conversations``). SMS
and WhatsApp keywords change consent and queue their answer instead.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from coachops_runtime.ai.replies import DailyLimitError
from coachops_runtime.auth.dependencies import EndUserContext
from coachops_runtime.channels import keywords, statuses
from coachops_runtime.channels.adapter import Adapter, HookRequest, Inbound
from coachops_runtime.channels.credentials import Credentials, decrypt
from coachops_runtime.channels.email import threads
from coachops_runtime.channels.repository import ChannelRepository
from coachops_runtime.channels.state import channels_of
from coachops_runtime.consent import service as consent
from coachops_runtime.container import Runtime, runtime_of
from coachops_runtime.conversations import service as conversations
from coachops_runtime.conversations.repository import ConversationRepository
from coachops_runtime.creators.schemas import Tenant
from coachops_runtime.creators.service import load_tenant
from coachops_runtime.kit.errors import (
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceUnavailable,
    TenantSuspended,
)
from coachops_runtime.kit.text import refuse_unstorable
from coachops_runtime.kit.transaction import request_session

log = logging.getLogger("coachops.channels")

MAX_BODY = 1_000_000
MAX_TEXT = 10_000  # as the web API's message body


async def _raw(request: Request, public_base: str) -> HookRequest:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"a webhook body is at most {MAX_BODY} bytes")
    url = str(request.url)
    if public_base:
        query = request.url.query
        url = f"{public_base.rstrip('/')}{request.url.path}" + (f"?{query}" if query else "")
    return HookRequest(
        method=request.method,
        url=url,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )


async def _wired_channel(
    request: Request, channel: str, program_id: uuid.UUID
) -> tuple[Runtime, Adapter, HookRequest, ChannelRepository, Tenant, Credentials]:
    channels = channels_of(request)
    adapter = channels.adapters.get(channel)
    if adapter is None:
        raise NotFound(f"no webhook for channel {channel}")
    raw = await _raw(request, channels.settings.webhook_base_url)
    runtime = runtime_of(request)
    session = await request_session(request.scope, runtime.pool)
    repo = ChannelRepository(session)
    creator_id = await repo.hook_tenant(program_id, channel)
    if creator_id is None:
        raise NotFound(f"no {channel} channel is wired for this program")
    await session.set_tenant(creator_id)
    tenant = await load_tenant(runtime, session)
    ciphertext = await repo.credentials(program_id, channel)
    if tenant is None or ciphertext is None:
        raise NotFound(f"no {channel} channel is wired for this program")
    if tenant.suspended:
        raise TenantSuspended("this creator is suspended")
    if channels.settings.key is None:
        raise ServiceUnavailable("channel credentials cannot be read: no channel key is set")
    return runtime, adapter, raw, repo, tenant, decrypt(channels.settings.key, ciphertext)


async def handshake(request: Request, channel: str, program_id: uuid.UUID) -> Response:
    """A provider's GET subscription check (WhatsApp's ``hub.verify_token``)."""
    _, adapter, raw, _, _, credentials = await _wired_channel(request, channel, program_id)
    return Response(adapter.handshake(raw, credentials), media_type="text/plain")


async def receive(request: Request, channel: str, program_id: uuid.UUID) -> Response:
    arrived = time.time()
    runtime, adapter, raw, repo, tenant, credentials = await _wired_channel(
        request, channel, program_id
    )
    adapter.verify(raw, credentials, arrived)
    parsed = adapter.parse(raw)
    if parsed.reply is not None:
        return Response(parsed.reply.get("challenge", ""), media_type="text/plain")
    program = await repo.program(program_id)
    if program is None:
        raise NotFound(f"no {channel} channel is wired for this program")
    for message in parsed.messages:
        await _one(runtime, adapter, repo, tenant, program_id, program, message)
    for update in parsed.statuses:
        await statuses.record(repo.session, tenant.creator_id, program_id, channel, update)
    body, media_type = adapter.acknowledgement()
    return Response(body, media_type=media_type)


def _ignores_unknown_senders(program: Any, channel: str) -> bool:
    """The channel's ``unknownSenders`` (CRD ChannelSpec): ``ignore``, or enrol (absent)."""
    spec = program["spec"]
    if isinstance(spec, str):
        spec = json.loads(spec)
    for entry in (spec or {}).get("channels") or ():
        if isinstance(entry, dict) and entry.get("type") == channel:
            return entry.get("unknownSenders") == "ignore"
    return False


async def _one(
    runtime: Runtime,
    adapter: Adapter,
    repo: ChannelRepository,
    tenant: Tenant,
    program_id: uuid.UUID,
    program: Any,
    message: Inbound,
) -> None:
    channel, creator_id = adapter.channel, tenant.creator_id
    fields = {"channel": channel, "program_id": str(program_id)}
    for key in (message.provider_key, *message.also_once):
        if not await repo.first_time(creator_id, program_id, channel, key):
            log.info("duplicate webhook message ignored", extra=fields)
            return
    try:
        text = refuse_unstorable(message.text.strip())[:MAX_TEXT]
    except ValueError:
        log.warning("webhook message not storable, ignored", extra=fields)
        return
    if not text:
        return
    end_user = await repo.known_sender(program_id, channel, message.sender, message.address)
    if end_user is None:
        if _ignores_unknown_senders(program, channel):
            log.info("message of an unknown sender ignored", extra=fields)
            return
        end_user = await repo.enrol_sender(
            creator_id,
            program_id,
            channel,
            message.sender,
            message.address,
            message.display_name,
            (message.locale or "en")[:35],
        )
    context = EndUserContext(runtime, repo.session, tenant, end_user, program_id)
    found = keywords.keyword(text) if adapter.capabilities.keywords else None
    if found is not None:
        await _keyword(context, channel, program, message, text, found)
        return
    try:
        await conversations.end_user_message(runtime, context, text, channel)
    except (DailyLimitError, QuotaExceeded) as error:
        # Stored without a reply: a provider would retry a refused webhook for hours.
        conversation = await ConversationRepository(repo.session).find_or_create(
            creator_id, program_id, end_user, channel
        )
        await ConversationRepository(repo.session).add_message(
            conversation["conversation_id"], direction="in", author="end_user", kind="chat",
            body=text,
        )  # fmt: skip
        log.info("webhook message stored without a reply", extra={**fields, "why": error.slug})
    except NotFound:
        log.info("message of a sender no longer enrolled ignored", extra=fields)
        return
    if message.thread is not None:  # e-mail: what the replies to this mail thread under
        await threads.record(repo.session, creator_id, program_id, end_user, message.thread)


async def _keyword(
    context: EndUserContext,
    channel: str,
    program: Any,
    message: Inbound,
    text: str,
    found: keywords.Keyword,
) -> None:
    repo = ChannelRepository(context.session)
    creator_id = context.tenant.creator_id
    if found.action != "help":
        await consent.record_change(
            context.session,
            creator_id,
            context.end_user_id,
            channel,
            granted=found.action == "start",
            address=message.address,
            source="keyword_start" if found.action == "start" else "keyword_stop",
        )
    conversations_repo = ConversationRepository(context.session)
    conversation = await conversations_repo.find_or_create(
        creator_id, context.program_id, context.end_user_id, channel
    )
    await conversations_repo.add_message(
        conversation["conversation_id"], direction="in", author="end_user", kind="chat", body=text
    )
    await repo.compliance_answer(
        creator_id,
        context.program_id,
        conversation["conversation_id"],
        context.end_user_id,
        channel,
        keywords.answer(found, str(program["title"] or program["name"])),
    )
    log.info(
        "keyword handled",
        extra={"channel": channel, "program_id": str(context.program_id), "keyword": found.action},
    )
