"""Fixtures for the widget: the runtime's app on a fresh database (tests/runtime), and
programs whose web channel lists the origins of the pages that embed the widget."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from coachops_crds.constants import program_id as derived_program_id
from tests.runtime.conftest import (
    Creator,
    Tenants,
    app,
    client,
    keys_dir,
    runtime_settings,
    tenants,
)

__all__ = ["app", "client", "keys_dir", "runtime_settings", "tenants"]


async def web_program(
    tenants: Tenants, creator: Creator, name: str, origins: list[str], **spec: Any
) -> uuid.UUID:
    """A program row as the operator writes it, its web channel listing ``origins``."""
    program = derived_program_id(creator.name, name)
    body = {
        "title": name.title(),
        "persona": {"name": "Coach"},
        "channels": [{"type": "web", "allowedOrigins": origins}],
        **spec,
    }
    await tenants.owner(
        creator.creator_id,
        "INSERT INTO programs (program_id, creator_id, name, title, spec)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        program,
        creator.creator_id,
        name,
        name.title(),
        json.dumps(body),
    )
    creator.programs[name] = program
    return program


async def end_user_token(client: httpx.AsyncClient, creator: Creator, program: uuid.UUID) -> str:
    """A new end user of ``program`` and a token for it, as the creator's backend gets one."""
    user = await client.post(
        "/v1/end-users",
        json={"program_ids": [str(program)], "display_name": "Robin"},
        headers=creator.headers,
    )
    assert user.status_code == 201, user.text
    token = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": user.json()["end_user_id"], "program_id": str(program)},
        headers=creator.headers,
    )
    assert token.status_code == 201, token.text
    return str(token.json()["access_token"])
