"""Reading coachops objects with the operator's Kubernetes client and the user's kubeconfig.

The operator's client (``coachops_operator.kube``) already reads kubeconfigs the way
kubectl does (exec plugins, client certificates, tokens), so the plugin logs in exactly as
the operator would from the same file. Every failure becomes a ``PluginError`` that says
what to do.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import kopf

from coachops_crds import constants as c
from coachops_kubectl.errors import PluginError
from coachops_operator.credentials import load
from coachops_operator.kinds import CHILD_KINDS
from coachops_operator.kube import KubeClient, KubeError, all_namespaces_path, get, list_objects

API_TIMEOUT = 30.0  # seconds per request


@asynccontextmanager
async def session() -> AsyncIterator[KubeClient]:
    """A client of the kubeconfig's current context; API failures as ``PluginError``."""
    try:
        api = KubeClient(load(), timeout=API_TIMEOUT)
    except kopf.LoginError as error:
        raise PluginError(
            f"no usable kubeconfig: {error} (set KUBECONFIG or --kubeconfig)"
        ) from None
    except (OSError, ssl.SSLError) as error:
        raise PluginError(f"the kubeconfig's certificates cannot be loaded: {error}") from None
    try:
        yield api
    except KubeError as error:
        if error.status in (401, 403):
            raise PluginError(f"the apiserver refused the kubeconfig's user: {error}") from None
        raise PluginError(f"the apiserver answered {error}") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise PluginError(f"cannot reach the apiserver at {api.server}: {reason}") from None
    finally:
        await api.close()


async def creators(api: KubeClient) -> list[dict[str, Any]]:
    items = await list_objects(api, c.API_VERSION, c.CREATOR_KIND, None)
    return sorted(items, key=lambda item: str(item["metadata"]["name"]))


async def creator(api: KubeClient, name: str) -> dict[str, Any]:
    found = await get(api, c.API_VERSION, c.CREATOR_KIND, None, name)
    if found is None:
        raise PluginError(f"no Creator named {name!r} (kubectl coachops status lists the tenants)")
    return found


async def programs(api: KubeClient, namespace: str | None = None) -> list[dict[str, Any]]:
    """CoachingPrograms of one namespace, or of every namespace."""
    if namespace is None:
        answer = await api.request("GET", all_namespaces_path(c.API_VERSION, c.PROGRAM_KIND))
        items: list[dict[str, Any]] = answer.get("items", [])
    else:
        items = await list_objects(api, c.API_VERSION, c.PROGRAM_KIND, namespace)
    return sorted(items, key=lambda item: (item["metadata"]["namespace"], item["metadata"]["name"]))


async def find_program(api: KubeClient, name: str, creator_name: str | None) -> dict[str, Any]:
    """The CoachingProgram ``name``: in the creator's namespace, or the only one so named."""
    if creator_name is not None:
        namespace = c.creator_namespace(creator_name)
        found = await get(api, c.API_VERSION, c.PROGRAM_KIND, namespace, name)
        if found is None:
            raise PluginError(f"no CoachingProgram {name!r} in namespace {namespace}")
        return found
    matches = [p for p in await programs(api) if p["metadata"]["name"] == name]
    if not matches:
        raise PluginError(f"no CoachingProgram named {name!r} in any namespace")
    if len(matches) > 1:
        owners = ", ".join(creator_of(p["metadata"]["namespace"]) for p in matches)
        raise PluginError(f"several CoachingPrograms are named {name!r} ({owners}): add --creator")
    return matches[0]


def creator_of(namespace: str) -> str:
    """The Creator whose namespace this is (the namespace itself when it is no tenant's)."""
    prefix = c.NAMESPACE_PREFIX
    return namespace[len(prefix) :] if namespace.startswith(prefix) else namespace


async def owned(api: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """Every object of the kinds the operator makes per tenant, in the tenant's namespace
    (the namespace itself first). Secrets keep their names and types only: their data is
    dropped here, before anything can print it."""
    found: list[dict[str, Any]] = []
    space = await get(api, "v1", "Namespace", None, namespace)
    if space is not None:
        found.append(space)
    for kind in CHILD_KINDS:
        if not kind.namespaced:
            continue
        try:
            items = await list_objects(api, kind.api_version, kind.kind, namespace)
        except KubeError as error:
            if error.status == 404:  # the namespace is gone (or going)
                continue
            raise
        for item in items:
            item.setdefault("kind", kind.kind)
            if kind.kind == "Secret":
                item.pop("data", None)
                item.pop("stringData", None)
            found.append(item)
    return found
