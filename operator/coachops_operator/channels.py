"""Channel wiring: each enabled channel's Secret checked, its keys copied, its webhook URL.

Every channel but ``web`` names a Secret (``secretRef``) in the program's namespace that
must hold the keys in ``REQUIRED_KEYS``. The operator reads it (the runtime never reads
Secrets), encrypts the required keys with the platform's channel key (Fernet) and writes
them to ``channel_credentials`` under the program's tenant. A SHA-256 over the copied keys
and values is stored with them: when the Secret changes the hash differs and the row is
written again, on the program's next re-check (program_sweep.py). Values never leave this
module in clear: conditions, Events and logs name Secrets and keys only.

The channel entries' other settings (``unknownSenders``, the WhatsApp ``template``) are
declared in the CRD and reach the runtime with the rest of the spec, which ``program.py``
copies into ``programs.spec``; nothing here needs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet

from coachops_operator import conditions as cond
from coachops_operator import kube
from coachops_operator.conditions import Observation
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.stores import Stores

# The keys each channel's Secret must hold.
REQUIRED_KEYS: Mapping[str, tuple[str, ...]] = {
    "telegram": ("bot-token", "webhook-secret"),
    "whatsapp": ("access-token", "app-secret", "verify-token", "phone-number-id"),
    "sms": ("account-sid", "auth-token", "from-number"),  # Twilio
    "slack": ("bot-token", "signing-secret"),
    # The address a Mailgun route forwards and the route's signing key; replies leave
    # through the runtime's SMTP settings, so no sending credential is copied.
    "email": ("from-address", "webhook-secret"),
}


@dataclass(frozen=True)
class Wiring:
    """ChannelsReady, the webhook URL per channel and the credentials to copy."""

    observation: Observation
    endpoints: dict[str, str] = field(default_factory=dict)
    copied: int = 0


def endpoint(base_url: str, channel: str, program: uuid.UUID) -> str:
    return f"{base_url.rstrip('/')}/v1/hooks/{channel}/{program}"


def secret_values(secret: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, str] | None:
    """The named keys of a Secret's ``data``, decoded; None when one is not base64/UTF-8."""
    data = secret.get("data") or {}
    try:
        return {key: base64.b64decode(data[key], validate=True).decode() for key in keys}
    except (binascii.Error, UnicodeDecodeError):
        return None


def fingerprint(values: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def encrypt(key: str, values: Mapping[str, str]) -> bytes:
    return Fernet(key).encrypt(json.dumps(values, sort_keys=True).encode())


def secret_channels(spec: Mapping[str, Any]) -> list[str]:
    """The enabled channels that need credentials (every one but web)."""
    return sorted(ch["type"] for ch in _enabled(spec) if ch["type"] != "web")


def _enabled(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    channels = spec.get("channels")
    if channels is None:
        channels = [{"type": "web"}]
    return [ch for ch in channels if ch.get("enabled", True)]


async def wire(
    stores: Stores,
    namespace: str,
    spec: Mapping[str, Any],
    tenant: uuid.UUID,
    program: uuid.UUID,
) -> Wiring:
    """Check each enabled channel's Secret and copy changed credentials; never raises for a
    missing Secret or key (the condition says what is missing)."""
    enabled = _enabled(spec)
    base = stores.settings.webhook_base_url
    endpoints = {
        ch["type"]: endpoint(base, ch["type"], program) for ch in enabled if ch["type"] != "web"
    }
    missing: list[str] = []
    problems: list[str] = []
    wanted: dict[str, tuple[str, dict[str, str]]] = {}
    for channel in enabled:
        type_ = channel["type"]
        if type_ == "web":
            continue
        secret_name = str(channel.get("secretRef") or "")
        keys = REQUIRED_KEYS[type_]
        try:
            secret = await kube.get(stores.api, "v1", "Secret", namespace, secret_name)
        except kube.KUBE_ERRORS as error:
            problems.append(f"{type_}: reading Secret {secret_name}: {describe(error)}")
            continue
        if secret is None:
            missing.append(f"{type_}: Secret {secret_name} not found (needs {', '.join(keys)})")
            continue
        absent = [key for key in keys if key not in (secret.get("data") or {})]
        if absent:
            missing.append(f"{type_}: Secret {secret_name} lacks {', '.join(absent)}")
            continue
        values = secret_values(secret, keys)
        if values is None:
            problems.append(f"{type_}: Secret {secret_name} holds a value that is not UTF-8")
            continue
        wanted[type_] = (secret_name, values)
    copied = 0
    if wanted:
        key = stores.settings.channel_key
        if key is None:
            problems.append("no channel key is set (COACHOPS_CHANNEL_KEY): nothing is copied")
        else:
            try:
                copied = await _copy(stores, tenant, program, key.get_secret_value(), wanted)
            except PG_ERRORS as error:
                problems.append(f"copying credentials: database {describe(error)}")
    # A channel disabled or removed since: its row went with the program's copy (the
    # spec changed); its memo must go too, or re-enabling it would never copy again.
    for memo in [m for m in stores.channel_hashes if m[0] == program]:
        if memo[1] not in endpoints:
            stores.channel_hashes.pop(memo, None)
    if missing:
        return Wiring(
            Observation.false(cond.CHANNELS_READY, "SecretMissing", "; ".join(missing)),
            endpoints,
            copied,
        )
    if problems:
        return Wiring(
            Observation.false(cond.CHANNELS_READY, "CredentialsNotCopied", "; ".join(problems)),
            endpoints,
            copied,
        )
    wired = sorted(wanted)
    message = (
        f"credentials of {', '.join(wired)} copied; webhooks in status.endpoints"
        if wired
        else "no channel needs credentials"
    )
    return Wiring(Observation.true(cond.CHANNELS_READY, "Wired", message), endpoints, copied)


async def _copy(
    stores: Stores,
    tenant: uuid.UUID,
    program: uuid.UUID,
    key: str,
    wanted: Mapping[str, tuple[str, dict[str, str]]],
) -> int:
    """Write the channels whose fingerprint changed; returns how many were written."""
    copied = 0
    for channel, (secret_name, values) in wanted.items():
        digest = fingerprint(values)
        memo = (program, channel)
        if stores.channel_hashes.get(memo) == digest:
            continue
        if await stores.db.channel_hash(tenant, program, channel) != digest:
            await stores.db.upsert_channel_credentials(
                tenant, program, channel, secret_name, digest, encrypt(key, values)
            )
            copied += 1
        stores.channel_hashes[memo] = digest
    return copied


def forget(stores: Stores, program: uuid.UUID) -> None:
    for memo in [memo for memo in stores.channel_hashes if memo[0] == program]:
        stores.channel_hashes.pop(memo, None)
