"""Kubeconfigs for restricted clients, so RBAC can be tested as the client it binds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client, config


async def service_account_kubeconfig(
    admin_kubeconfig: Path,
    namespace: str,
    name: str,
    out_dir: Path,
    *,
    expiration_seconds: int = 3600,
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` (which must exist).

    The token comes from the TokenRequest API; the cluster entry is the admin kubeconfig's.
    """
    api_client = await config.new_client_from_config(config_file=str(admin_kubeconfig))
    async with api_client:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        response = await client.CoreV1Api(api_client).create_namespaced_service_account_token(
            name, namespace, request
        )
    admin: dict[str, Any] = yaml.safe_load(admin_kubeconfig.read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    user = f"system:serviceaccount:{namespace}:{name}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": response.status.token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": cluster["name"], "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{namespace}.{name}.kubeconfig"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
