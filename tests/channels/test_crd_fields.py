"""The channel settings the runtime reads are declared in the CRD: a CoachingProgram with
``unknownSenders`` and a WhatsApp ``template`` keeps them through the real apiserver
(which prunes undeclared fields), bad values are refused there, and the spec the operator
stores from it (``CoachingProgramSpec.model_dump``, as ``program.py`` copies it) takes
effect in the runtime: unknown senders ignored, replies outside 24 hours sent as the
template."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from coachops_crds import constants as c
from coachops_crds.models import CoachingProgramSpec
from coachops_devstack.crds import install_crds
from tests.channels.conftest import Channeling
from tests.conftest import Cluster, kubectl_path

TEMPLATE: dict[str, Any] = {"name": "coach_checkin", "language": "pt_BR"}
REFUSED: list[tuple[list[dict[str, Any]], str]] = [
    ([{"type": "sms", "secretRef": "s", "template": TEMPLATE}], "whatsapp channel only"),
    ([{"type": "web", "unknownSenders": "ignore"}], "not web"),
    ([{"type": "slack", "secretRef": "s", "unknownSenders": "maybe"}], "Unsupported value"),
    ([{"type": "whatsapp", "secretRef": "w", "template": {"name": "Bad Name"}}], "should match"),
    ([{"type": "whatsapp", "secretRef": "w", "template": {"language": "en"}}], "name"),
]


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Cluster:
    install_crds(kubectl_path(), cluster.kubeconfig)
    return cluster


def program(channels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.PROGRAM_KIND,
        "metadata": {"name": f"fields-{uuid.uuid4().hex[:6]}", "namespace": "default"},
        "spec": {"title": "Sleep", "persona": {"name": "Juniper"}, "channels": channels},
    }


def admitted(cluster: Cluster, channels: list[dict[str, Any]]) -> Any:
    """What the apiserver would store (server-side dry run): the stderr when refused."""
    result = cluster.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-",
        input=json.dumps(program(channels)), check=False,
    )  # fmt: skip
    return json.loads(result.stdout)["spec"] if result.returncode == 0 else result.stderr


def test_the_apiserver_keeps_the_fields_and_refuses_bad_values(crds: Cluster) -> None:
    spec = admitted(
        crds,
        [
            {"type": "whatsapp", "secretRef": "wa", "template": TEMPLATE},
            {"type": "sms", "secretRef": "sms", "unknownSenders": "ignore"},
            {"type": "telegram", "secretRef": "tg", "template": None},
        ],
    )
    assert isinstance(spec, dict), spec
    whatsapp, sms, telegram = spec["channels"]
    assert whatsapp["template"] == TEMPLATE
    assert "unknownSenders" not in whatsapp  # absent: enrol
    assert sms["unknownSenders"] == "ignore"
    assert "template" not in sms
    assert "template" not in telegram
    defaulted = admitted(crds, [{"type": "whatsapp", "secretRef": "wa", "template": {"name": "x"}}])
    assert defaulted["channels"][0]["template"] == {"name": "x", "language": "en"}

    for channels, why in REFUSED:
        refused = admitted(crds, channels)
        assert isinstance(refused, str), channels
        assert why in refused, refused


async def test_what_the_operator_stores_takes_effect(crds: Cluster, channeling: Channeling) -> None:
    channels: list[dict[str, Any]] = [
        {"type": "whatsapp", "secretRef": "whatsapp-secret", "template": TEMPLATE},
        {"type": "sms", "secretRef": "sms-secret", "unknownSenders": "ignore"},
    ]
    stored = admitted(crds, channels)
    assert isinstance(stored, dict), stored
    # What the operator copies into PostgreSQL (program.py: spec.model_dump).
    spec = CoachingProgramSpec.model_validate({**stored, "model": {}})
    copied = spec.model_dump(by_alias=True, mode="json")
    full = {**channeling.coaching.spec(), "channels": copied["channels"]}
    creator = await channeling.coaching.creator(f"crd{uuid.uuid4().hex[:8]}")
    program_id = await channeling.coaching.program(creator, "sleep", full)
    whatsapp = await channeling.wire(creator, program_id, "whatsapp")
    sms = await channeling.wire(creator, program_id, "sms")

    # unknownSenders: ignore on sms, enrol (absent) on whatsapp.
    await channeling.say(channeling.sender(sms), "hello?")
    robin = channeling.sender(whatsapp)
    await channeling.say(robin, "hello")
    identities = await channeling.rows(
        "SELECT channel FROM channel_identities WHERE program_id = $1", program_id
    )
    assert [row["channel"] for row in identities] == ["whatsapp"]

    # Outside the 24-hour window the reply goes as the declared template.
    await channeling.rows(
        "UPDATE channel_identities SET last_inbound_at = now() - interval '25 hours'"
        " WHERE program_id = $1",
        program_id,
    )
    await channeling.creator_reply(robin, "checking in")
    await channeling.deliver()
    (sent,) = channeling.received(robin)
    assert sent.payload["template"]["name"] == "coach_checkin"
    assert sent.payload["template"]["language"] == {"code": "pt_BR"}
