"""The newcomer's way in, as the README walks it: sign up with the sample creator's contact
e-mail, read the verification e-mail in Mailpit, verify with its link's token, log in and
read the creator. The runtime is the ASGI app, the worker a real process, Mailpit real."""

from __future__ import annotations

import json
import re
import signal

import httpx
import pytest
import yaml
from pydantic import SecretStr

from coachops_crds.constants import tenant_id
from coachops_crds.models import CreatorSpec
from coachops_devstack.mailpit import Mailpit
from coachops_devstack.paths import REPO_ROOT
from coachops_devstack.process import ComponentError
from coachops_runtime.kit.settings import Settings
from tests.conftest import Database
from tests.mail.conftest import PUBLIC_BASE_URL, StartWorker, wait_for_mail
from tests.runtime.conftest import PASSWORD, Tenants

SAMPLE = yaml.safe_load((REPO_ROOT / "manifests" / "samples" / "creator.yaml").read_text())


async def test_sign_up_verify_from_the_e_mail_log_in_and_read_the_creator(
    client: httpx.AsyncClient,
    tenants: Tenants,
    worker_settings: Settings,
    mailpit: Mailpit,
    start_worker: StartWorker,
) -> None:
    name = SAMPLE["metadata"]["name"]
    spec = CreatorSpec.model_validate(SAMPLE["spec"])
    email = spec.contact.email
    # The operator's part of `make up`: the sample Creator's tenant row.
    creator_id = tenant_id(name)
    await tenants.owner(
        creator_id,
        "INSERT INTO creators (creator_id, name, display_name, contact_email, plan, isolation)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
        creator_id,
        name,
        spec.display_name,
        email,
        json.dumps(spec.plan.model_dump(by_alias=True)),
        spec.isolation,
    )
    worker = await start_worker(worker_settings)

    credentials = {"email": email, "password": PASSWORD}
    response = await client.post("/v1/auth/signup", json={"creator": name, **credentials})
    assert response.status_code == 202, response.text
    response = await client.post("/v1/auth/login", json=credentials)
    assert response.status_code == 403
    assert "verify your e-mail address first" in response.json()["detail"]

    (summary,) = await wait_for_mail(mailpit, email)
    assert summary["Subject"] == "Verify your e-mail address for coachops"
    text = (await mailpit.message(summary["ID"]))["Text"]
    link = re.search(rf"{re.escape(PUBLIC_BASE_URL)}/verify#(\S+)", text)
    assert link is not None, text
    token = link.group(1)

    response = await client.post("/v1/auth/verify", json={"token": token})
    assert response.status_code == 204, response.text
    response = await client.post("/v1/auth/login", json=credentials)
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    response = await client.get("/v1/creator", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == name
    assert response.json()["creator_id"] == str(creator_id)

    # SIGTERM stops the worker cleanly; its log says what it sent and never with what.
    assert worker.stop_signal == signal.SIGTERM
    worker.stop()
    assert worker.popen is not None
    assert worker.popen.returncode == 0
    log = worker.log_path.read_text()
    assert '"e-mail sent"' in log
    assert '"worker stopped"' in log
    assert token not in log
    assert token.rsplit(".", 1)[1] not in log


async def test_the_worker_refuses_a_database_role_that_bypasses_row_level_security(
    worker_settings: Settings, database: Database, start_worker: StartWorker
) -> None:
    owner = worker_settings.model_copy(update={"database_url": SecretStr(database.owner_dsn)})
    with pytest.raises(ComponentError, match=r"exited with code 2[\s\S]*refusing to start"):
        await start_worker(owner)
