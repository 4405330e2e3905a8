"""A dedicated tenant as the operator makes it: its database role, Redis user, Secret and
runtime Deployment, built by the operator's own code."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coachops_crds import constants as c
from coachops_crds.models import CreatorSpec
from coachops_operator import builders, jwt_keys
from coachops_operator.database import Database as OperatorDatabase
from coachops_operator.database import TenantRow
from coachops_operator.redis_users import RedisUsers


@dataclass(frozen=True)
class DedicatedTenant:
    name: str
    tenant_id: uuid.UUID
    role: str
    deployment: builders.Manifest
    secret: builders.Manifest

    def container(self) -> dict[str, Any]:
        container: dict[str, Any] = self.deployment["spec"]["template"]["spec"]["containers"][0]
        return container

    def environment(self) -> dict[str, str]:
        """The container's environment as the kubelet resolves it (values and secretKeyRefs)."""
        data = {k: base64.b64decode(v).decode() for k, v in self.secret["data"].items()}
        env: dict[str, str] = {}
        for entry in self.container()["env"]:
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            else:
                env[entry["name"]] = data[entry["valueFrom"]["secretKeyRef"]["key"]]
        return env


def dedicated_spec(**runtime: Any) -> CreatorSpec:
    return CreatorSpec.model_validate(
        {
            "displayName": "Dedicated",
            "contact": {"email": "owner@example.com"},
            "isolation": "dedicated",
            "runtime": runtime,
        }
    )


async def provision_dedicated(
    name: str,
    *,
    owner_dsn: str,
    pg_host: str,
    pg_port: int,
    database: str,
    redis_admin_url: str,
    redis_host: str,
    redis_port: int,
    chroma_url: str,
    keys_dir: Path,
    image: str = "coachops/runtime:test",
) -> DedicatedTenant:
    """Provision ``name`` as the operator's reconcile does, and build its Deployment."""
    spec = dedicated_spec()
    tenant = c.tenant_id(name)
    role = c.tenant_db_role(name)
    db_password = secrets.token_urlsafe(24)
    redis_user = c.tenant_redis_user(name)
    redis_password = secrets.token_urlsafe(24)
    db = OperatorDatabase(owner_dsn)
    try:
        await db.provision(
            TenantRow(
                creator_id=tenant,
                name=name,
                display_name=spec.display_name,
                contact_email=f"{name}@example.com",
                plan={"requestsPerSecond": 1000},
                isolation="dedicated",
                suspended=False,
                generation=1,
            ),
            role,
            db_password,
        )
    finally:
        await db.close()
    users = RedisUsers(redis_admin_url)
    try:
        await users.ensure_user(redis_user, c.tenant_redis_prefix(name), redis_password)
    finally:
        await users.close()
    ref = builders.CreatorRef(name, str(uuid.uuid4()))
    env = builders.RuntimeEnv(
        image=image,
        chroma_url=chroma_url,
        jwt_public_keys=jwt_keys.public_keys(keys_dir),
    )
    secret = builders.credentials_secret(
        ref,
        {
            "DATABASE_URL": builders.database_url(role, db_password, pg_host, pg_port, database),
            "REDIS_URL": builders.redis_url(redis_user, redis_password, redis_host, redis_port),
        },
    )
    return DedicatedTenant(name, tenant, role, builders.runtime_deployment(ref, spec, env), secret)
