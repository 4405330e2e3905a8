"""E-mail channel helpers: a program wired to e-mail the way the operator wires it, an end
user writing to it through Mailgun's inbound route, and what arrives at Mailpit."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.fernet import Fernet

from coachops_devstack.mailpit import Mailpit
from coachops_devstack.standins import signers
from tests.channels.conftest import Channeling, Wired


async def wire_email(channeling: Channeling, **entry: Any) -> Wired:
    tag = uuid.uuid4().hex[:8]
    creator = await channeling.coaching.creator(f"em{tag}")
    spec = channeling.coaching.spec()
    spec["channels"] = [{"type": "email", "secretRef": "mail", **entry}]
    program = await channeling.coaching.program(creator, "sleep", spec)
    values = {"from-address": f"coach-{tag}@coach.example.com", "webhook-secret": f"key-{tag}"}
    key = channeling.settings.key
    assert key is not None
    ciphertext = Fernet(key.get_secret_value()).encrypt(json.dumps(values).encode())
    await channeling.coaching.tenants.owner(
        creator.creator_id,
        "INSERT INTO channel_credentials (creator_id, program_id, channel, secret_name,"
        " secret_hash, ciphertext) VALUES ($1, $2, 'email', 'mail', 'test', $3)",
        creator.creator_id,
        program,
        ciphertext,
    )
    return Wired(creator, program, "email", values)


@dataclass
class Writer:
    """An end user writing e-mails to a program."""

    wired: Wired
    address: str
    name: str = "Robin Reader"

    def mail(self, subject: str, text: str, **headers: str) -> dict[str, str]:
        return signers.mailgun_mail(
            f"{self.name} <{self.address}>", self.wired.values["from-address"], subject, text,
            **headers,
        )  # fmt: skip

    def sign(self, fields: dict[str, str], key: str | None = None, **kw: Any) -> Any:
        return signers.mailgun(key or self.wired.values["webhook-secret"], fields, **kw)


def writer(wired: Wired) -> Writer:
    return Writer(wired, f"robin-{uuid.uuid4().hex[:10]}@reader.example.org")


async def post(client: httpx.AsyncClient, wired: Wired, signed: Any) -> httpx.Response:
    body, headers = signed
    return await client.post(wired.path, content=body, headers=headers)


async def received(mailpit: Mailpit, to: str) -> list[dict[str, Any]]:
    """Every message Mailpit holds for ``to``, oldest first, with its headers."""
    summaries = await mailpit.messages(to)
    found = []
    async with httpx.AsyncClient(base_url=mailpit.url, timeout=5) as http:
        for summary in reversed(summaries):
            message = await mailpit.message(summary["ID"])
            response = await http.get(f"/api/v1/message/{summary['ID']}/headers")
            response.raise_for_status()
            message["headers"] = response.json()
            found.append(message)
    return found


async def creator_reply(channeling: Channeling, wired: Wired, address: str, text: str) -> None:
    """The creator writes into the end user's e-mail conversation."""
    (row,) = await channeling.rows(
        "SELECT v.conversation_id FROM conversations v JOIN channel_identities i"
        " ON i.end_user_id = v.end_user_id AND i.program_id = v.program_id"
        " AND i.channel = v.channel WHERE i.external_id = $1 AND i.program_id = $2",
        address,
        wired.program,
    )
    response = await channeling.client.post(
        f"/v1/conversations/{row['conversation_id']}/messages",
        json={"body": text},
        headers=wired.creator.headers,
    )
    assert response.status_code == 201, response.text
