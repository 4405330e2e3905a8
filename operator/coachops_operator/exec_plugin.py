"""Exec credential plugins: what kubeconfigs of EKS, GKE and AKS run to get a token.

``ExecPlugin`` runs a kubeconfig user's ``exec`` entry (``client.authentication.k8s.io``
``v1`` or ``v1beta1``) as a subprocess, as kubectl does: with the entry's ``args`` and
``env``, no terminal, and ``KUBERNETES_EXEC_INFO`` (the cluster too with
``provideClusterInfo``). It keeps the token until its ``expirationTimestamp`` less
``EXPIRY_MARGIN`` and runs the plugin again after that, or when asked to (a 401). What it
cannot use (a plugin that fails, times out, wants a terminal or answers with a client
certificate) is a ``kopf.LoginError`` that says so.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import kopf
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coachops_operator.validation import first_problem

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT_SECONDS = 60.0  # cloud CLIs may take a while on a cold start
EXPIRY_MARGIN = timedelta(seconds=10)  # never send a token that may expire on the way


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class EnvVar(_Model):
    name: str
    value: str


class ExecConfig(_Model):
    """A kubeconfig user's ``exec`` entry."""

    api_version: str = Field(alias="apiVersion")
    command: str
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] | None = None
    interactive_mode: Literal["Never", "IfAvailable", "Always"] = Field(
        "IfAvailable", alias="interactiveMode"
    )
    provide_cluster_info: bool = Field(False, alias="provideClusterInfo")
    install_hint: str = Field("", alias="installHint")


class ExecStatus(_Model):
    token: str | None = None
    client_certificate_data: str | None = Field(None, alias="clientCertificateData")
    client_key_data: str | None = Field(None, alias="clientKeyData")
    expiration_timestamp: datetime | None = Field(None, alias="expirationTimestamp")


class ExecCredential(_Model):
    """What an exec plugin prints on stdout."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["ExecCredential"]
    status: ExecStatus


class ExecPlugin:
    """Runs a kubeconfig's exec plugin and keeps its token until it expires."""

    def __init__(self, config: ExecConfig, *, base_dir: Path, cluster: Mapping[str, Any]) -> None:
        if config.api_version not in EXEC_API_VERSIONS:
            raise kopf.LoginError(
                f"exec plugin {config.command!r} uses {config.api_version}; the operator "
                f"supports {' and '.join(EXEC_API_VERSIONS)}"
            )
        if config.interactive_mode == "Always":
            raise kopf.LoginError(
                f"exec plugin {config.command!r} needs a terminal (interactiveMode: Always); "
                "the operator runs without one: configure the plugin to log in "
                "non-interactively"
            )
        self.config = config
        command = config.command
        if os.sep in command and not os.path.isabs(command):
            command = str(base_dir / command)  # kubectl resolves it against the kubeconfig
        self.command = command
        self._cluster = cluster
        self._token: str | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()

    @property
    def expiration(self) -> datetime | None:
        """When the token in hand stops being used (its expiry less the margin)."""
        return None if self._expires is None else self._expires - EXPIRY_MARGIN

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        expiration = self.expiration
        return expiration is None or datetime.now(UTC) < expiration

    async def token(self, *, refresh: bool = False) -> str:
        """The plugin's token; runs the plugin when there is none, it expired, or on
        ``refresh`` (the apiserver refused the one in hand)."""
        async with self._lock:
            if refresh or not self._fresh():
                self._token, self._expires = await self._run()
            assert self._token is not None
            return self._token

    def _environment(self) -> dict[str, str]:
        spec: dict[str, Any] = {"interactive": False}
        if self.config.provide_cluster_info:
            spec["cluster"] = self._cluster
        info = {"apiVersion": self.config.api_version, "kind": "ExecCredential", "spec": spec}
        env = dict(os.environ)
        env.update({var.name: var.value for var in self.config.env or []})
        env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
        return env

    async def _run(self) -> tuple[str, datetime | None]:
        name = self.config.command
        hint = f" ({self.config.install_hint.strip()})" if self.config.install_hint else ""
        try:
            process = await asyncio.create_subprocess_exec(
                self.command,
                *self.config.args,
                env=self._environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise kopf.LoginError(
                f"cannot run exec plugin {name!r}: {error.strerror}{hint}"
            ) from None
        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(), timeout=EXEC_TIMEOUT_SECONDS
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise kopf.LoginError(
                f"exec plugin {name!r} did not answer within {EXEC_TIMEOUT_SECONDS:.0f} s"
            ) from None
        if process.returncode != 0:
            # The plugin's own words say why (not logged in, no profile ...); they carry no
            # credential, which goes to stdout only.
            last = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise kopf.LoginError(
                f"exec plugin {name!r} failed with exit code {process.returncode}: {last[0]}"
            )
        try:
            credential = ExecCredential.model_validate_json(stdout)
        except ValidationError as error:
            raise kopf.LoginError(
                f"exec plugin {name!r} printed no valid ExecCredential: {first_problem(error)}"
            ) from None
        if credential.api_version != self.config.api_version:
            raise kopf.LoginError(
                f"exec plugin {name!r} answered with {credential.api_version}, "
                f"asked for {self.config.api_version}"
            )
        status = credential.status
        if status.client_certificate_data or status.client_key_data:
            raise kopf.LoginError(
                f"exec plugin {name!r} returned a client certificate; the operator supports "
                "exec plugins that return a token (as the EKS, GKE and AKS plugins do)"
            )
        if not status.token:
            raise kopf.LoginError(f"exec plugin {name!r} returned no token")
        expires = status.expiration_timestamp
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return status.token, expires
