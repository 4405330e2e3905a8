"""The Kubernetes client the runtime writes custom objects with (its ServiceAccount).

The hot path never calls the Kubernetes API; only configuration writes and status reads
of the creator hub do. Without a kubeconfig or in-cluster credentials those answer 503.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from coachops_runtime.kit.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)

__all__ = ["ApiException", "Kube"]


class Kube:
    def __init__(self, api: client.ApiClient | None) -> None:
        self.api = api

    @classmethod
    async def connect(cls, kubeconfig: Path | None) -> Kube:
        if kubeconfig is not None and os.path.exists(kubeconfig):  # noqa: ASYNC240 - once
            return cls(await config.new_client_from_config(config_file=str(kubeconfig)))
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return cls(client.ApiClient(configuration))
        return cls(None)

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()

    def _objects(self) -> client.CustomObjectsApi:
        if self.api is None:
            raise ServiceUnavailable("no Kubernetes API is configured", retry_after=30)
        return client.CustomObjectsApi(self.api)

    async def create(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self._objects().create_namespaced_custom_object(
                group, version, namespace, plural, body
            )
        except ApiException as error:
            if error.status in (403, 404):
                # The namespace, or the runtime's RoleBinding in it, is not there yet: the
                # operator creates both when it reconciles the Creator.
                raise ServiceUnavailable(
                    f"namespace {namespace} is not ready for programs yet; retry shortly",
                    retry_after=10,
                ) from error
            raise refusal_problem(error) from error
        return result

    async def get(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._objects().get_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise refusal_problem(error) from error
        return result

    async def patch(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self._objects().patch_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                name,
                body,
                _content_type="application/merge-patch+json",  # type: ignore[call-arg]
            )
        except ApiException as error:
            raise refusal_problem(error) from error
        return result

    async def delete(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> None:
        try:
            await self._objects().delete_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        except ApiException as error:
            raise refusal_problem(error) from error


def refusal_problem(error: ApiException) -> Exception:
    """The problem the client gets when the Kubernetes API refuses a call."""
    if error.status == 403:
        return ServiceUnavailable(
            "the runtime is not (yet) allowed to manage programs in this namespace",
            retry_after=10,
        )
    if error.status == 404:
        return NotFound("no such object")
    if error.status == 409:
        return Conflict("an object with that name exists")
    if error.status == 400:  # the apiserver could not take the object as sent
        return BadRequest(_reason(error))
    if error.status == 422:
        return ValidationFailed(_reason(error))
    return ServiceUnavailable(f"Kubernetes API answered {error.status}", retry_after=5)


def _reason(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or b"{}").get("message", "invalid object"))
    except (ValueError, TypeError, AttributeError):
        return "invalid object"
