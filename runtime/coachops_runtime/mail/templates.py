"""The e-mails the runtime queues, by template name, rendered from their outbox payload.

Links start with ``public_base_url``; the token is the link's fragment. Every e-mail with a
link also names the API call that takes its token, for API clients without a web app.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError


class TemplateError(ValueError):
    """The row can never be rendered: unknown template, or a payload that does not fit it."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _LinkTemplate:
    subject: str
    intro: str
    action: str
    path: str
    api: str


class _LinkPayload(BaseModel):
    token: str = Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9._-]+$")


class _InvitePayload(BaseModel):
    end_user_id: uuid.UUID
    creator: str = Field(min_length=1, max_length=200)


class _SafetyPayload(BaseModel):
    """A safety alert names the event, never the message: ids, a category and a link."""

    event_id: uuid.UUID
    conversation_id: uuid.UUID
    program: str = Field(min_length=1, max_length=63)
    category: str = Field(pattern=r"^(self_harm|abuse|medical_emergency)$")


_LINKS = {
    "verify_email": _LinkTemplate(
        subject="Verify your e-mail address for coachops",
        intro="Welcome to coachops. Confirm that this address is yours to finish creating"
        " your account.",
        action="Verify my address",
        path="/verify",
        api='POST /v1/auth/verify with {"token": "<token>"}',
    ),
    "password_reset": _LinkTemplate(
        subject="Reset your coachops password",
        intro="Someone asked to reset the password of your coachops account. If it was not"
        " you, ignore this e-mail: your password stays as it is.",
        action="Choose a new password",
        path="/reset",
        api='POST /v1/auth/password-reset/confirm with {"token": "<token>", "new_password": "..."}',
    ),
    "magic_link": _LinkTemplate(
        subject="Your coaching sign-in link",
        intro="Here is your link to sign in to your coaching conversation.",
        action="Open my coaching chat",
        path="/chat",
        api='POST /v1/auth/magic-link/redeem with {"token": "<token>"}',
    ),
}

TEMPLATES = frozenset({*_LINKS, "end_user_invite", "safety_alert"})


def _one_line(value: str) -> str:
    """Text fit for a header: control characters (line breaks above all) become spaces."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value).strip()


def render(template: str, payload: Mapping[str, Any], base_url: str) -> Rendered:
    try:
        if template in _LINKS:
            token = _LinkPayload.model_validate(payload).token
            return _link(_LINKS[template], token, base_url.rstrip("/"))
        if template == "end_user_invite":
            return _invite(_InvitePayload.model_validate(payload).creator)
        if template == "safety_alert":
            return _safety_alert(_SafetyPayload.model_validate(payload), base_url.rstrip("/"))
    except ValidationError as error:
        # The validation message would quote the payload, token included: name the fields only.
        fields = sorted({".".join(map(str, e["loc"])) for e in error.errors()})
        raise TemplateError(f"payload does not fit {template}: {', '.join(fields)}") from None
    raise TemplateError(f"unknown template {template[:60]!r}")


def _link(spec: _LinkTemplate, token: str, base_url: str) -> Rendered:
    link = f"{base_url}{spec.path}#{token}"
    api = spec.api.replace("<token>", token)
    text = f"{spec.intro}\n\n{spec.action}: {link}\n\nThe link works once. API clients: {api}\n"
    body = (
        f"<p>{html.escape(spec.intro)}</p>"
        f'<p><a href="{html.escape(link)}">{html.escape(spec.action)}</a></p>'
        f"<p>The link works once. API clients: <code>{html.escape(api)}</code></p>"
    )
    return Rendered(spec.subject, text, body)


def _invite(creator: str) -> Rendered:
    name = _one_line(creator)
    text = (
        f"{name} has added you to their coaching on coachops.\n\n"
        "To start, open the sign-in link they send you.\n"
    )
    body = (
        f"<p>{html.escape(name)} has added you to their coaching on coachops.</p>"
        "<p>To start, open the sign-in link they send you.</p>"
    )
    return Rendered(f"{name} invited you to coaching", text, body)


_CATEGORY_NAMES = {
    "self_harm": "self-harm or suicide",
    "abuse": "abuse",
    "medical_emergency": "a medical emergency",
}


def _safety_alert(alert: _SafetyPayload, base_url: str) -> Rendered:
    link = f"{base_url}/conversations/{alert.conversation_id}"
    what = _CATEGORY_NAMES[alert.category]
    intro = (
        f"A message in your program {alert.program} showed signs of {what}. The end user "
        "was given crisis resources, and the AI coach is paused in that conversation until "
        "you resume it."
    )
    api = (
        f"GET /v1/conversations/{alert.conversation_id}/messages; "
        f"POST /v1/conversations/{alert.conversation_id}/resume"
    )
    text = f"{intro}\n\nOpen the conversation: {link}\n\nEvent {alert.event_id}. API: {api}\n"
    body = (
        f"<p>{html.escape(intro)}</p>"
        f'<p><a href="{html.escape(link)}">Open the conversation</a></p>'
        f"<p>Event {alert.event_id}. API: <code>{html.escape(api)}</code></p>"
    )
    return Rendered(f"Safety alert in {alert.program}: please check a conversation", text, body)
