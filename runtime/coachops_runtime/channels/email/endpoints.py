"""One-click unsubscribe (RFC 8058) at ``/v1/hooks/email/{program_id}/unsubscribe``.

``POST`` (what a mail client sends for ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
and what the page's button sends) withdraws the end user's e-mail consent: the outbox then
suppresses every further e-mail to them. ``GET`` (a person following the link, or a
scanner fetching it) changes nothing and answers a page with that button. The token is
checked against the program in the path; a token of another program or end user is a 403.
"""

from __future__ import annotations

import html
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from coachops_runtime.channels.email import unsubscribe
from coachops_runtime.channels.repository import ChannelRepository
from coachops_runtime.channels.state import channels_of
from coachops_runtime.consent import service as consent
from coachops_runtime.container import runtime_of
from coachops_runtime.creators.service import load_tenant
from coachops_runtime.kit.errors import Forbidden, NotFound, ServiceUnavailable, problems
from coachops_runtime.kit.text import Storable
from coachops_runtime.kit.transaction import request_session

router = APIRouter(tags=["channels"])
log = logging.getLogger("coachops.channels")
Token = Annotated[
    str, Query(min_length=10, max_length=100, pattern=r"^[0-9a-f]{32}\.[\w=-]+$"), Storable
]
PATH = "/v1/hooks/email/{program_id}/unsubscribe"
_ADDRESS = (
    "SELECT address FROM channel_identities"
    " WHERE program_id = $1 AND channel = 'email' AND end_user_id = $2"
)


async def _subscriber(
    request: Request, program_id: uuid.UUID, token: str
) -> tuple[ChannelRepository, uuid.UUID, uuid.UUID, str]:
    """(repository, tenant, end user, address) the token names, under the program's tenant.
    As for the webhooks: a program without e-mail is a 404 whatever else is wrong."""
    runtime = runtime_of(request)
    session = await request_session(request.scope, runtime.pool)
    repo = ChannelRepository(session)
    creator_id = await repo.hook_tenant(program_id, "email")
    if creator_id is None:
        raise NotFound("no email channel is wired for this program")
    await session.set_tenant(creator_id)
    if await load_tenant(runtime, session) is None:
        raise NotFound("no email channel is wired for this program")
    key = channels_of(request).settings.key
    if key is None:
        raise ServiceUnavailable("unsubscribe links cannot be checked: no channel key is set")
    end_user_id = unsubscribe.end_user_of(key, program_id, token)
    if end_user_id is None:
        raise Forbidden("this unsubscribe link is not valid for this program")
    address = await session.scalar(_ADDRESS, program_id, end_user_id)
    if not isinstance(address, str):
        raise NotFound("no such subscriber of this program")
    return repo, creator_id, end_user_id, address


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"</head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )


@router.get(PATH, response_class=HTMLResponse, responses=problems(403, 404, 503))
async def unsubscribe_page(program_id: uuid.UUID, token: Token, request: Request) -> HTMLResponse:
    """A page with the button that unsubscribes; following the link changes nothing."""
    await _subscriber(request, program_id, token)
    action = html.escape(f"{request.url.path}?token={token}", quote=True)
    return _page(
        "Unsubscribe",
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<p>Stop the e-mails of this coaching program?</p>"
        '<button type="submit">Unsubscribe</button></form>',
    )


@router.post(PATH, response_class=HTMLResponse, responses=problems(403, 404, 503))
async def unsubscribe_now(program_id: uuid.UUID, token: Token, request: Request) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe: no further e-mail of this program goes to the end
    user until they consent again."""
    repo, creator_id, end_user_id, address = await _subscriber(request, program_id, token)
    await consent.record_change(
        repo.session,
        creator_id,
        end_user_id,
        "email",
        granted=False,
        address=address,
        source="end_user",
    )
    log.info("e-mail unsubscribed", extra={"channel": "email", "program_id": str(program_id)})
    return _page("Unsubscribed", "<p>You will get no more e-mails from this program.</p>")
