"""The model provider's API key: the Secret ``spec.model.apiKeySecretRef`` names, copied.

The runtime never reads Secrets. As for channel credentials (``channels.py``), the
operator reads the Secret in the program's namespace, encrypts its ``api-key`` with the
platform's credentials key (Fernet, ``COACHOPS_CHANNEL_KEY``) and writes it to
``provider_credentials`` under the program's tenant, with a SHA-256 of the value: a
rotated Secret differs and is copied again on the program's next re-check. Without a
reference any copied key is removed. The key never leaves this module in clear: what it
returns names the Secret and the key only.
"""

from __future__ import annotations

import uuid

from coachops_crds.models import CoachingProgramSpec
from coachops_operator import kube
from coachops_operator.channels import encrypt, fingerprint, secret_values
from coachops_operator.database import STORE_ERRORS as PG_ERRORS
from coachops_operator.errors import describe
from coachops_operator.stores import Stores

KEY = "api-key"


async def copy(
    stores: Stores,
    namespace: str,
    spec: CoachingProgramSpec,
    tenant: uuid.UUID,
    program: uuid.UUID,
) -> str | None:
    """Copy the key if it changed (or remove it when the spec names none); returns what is
    wrong, for ModelReady, or None. Never raises for a missing Secret or key."""
    secret_name = spec.model.api_key_secret_ref
    try:
        if not secret_name:
            # "" marks a program known to have no key row (one delete after a restart).
            if stores.provider_hashes.get(program) != "":
                await stores.db.delete_provider_credentials(tenant, program)
                stores.provider_hashes[program] = ""
            return None
        secret = await kube.get(stores.api, "v1", "Secret", namespace, secret_name)
        if secret is None:
            return f"Secret {secret_name} (apiKeySecretRef) not found"
        if KEY not in (secret.get("data") or {}):
            return f"Secret {secret_name} (apiKeySecretRef) lacks {KEY}"
        values = secret_values(secret, (KEY,))
        if values is None:
            return f"Secret {secret_name} holds a {KEY} that is not UTF-8"
        credentials_key = stores.settings.channel_key
        if credentials_key is None:
            return "no credentials key is set (COACHOPS_CHANNEL_KEY): the API key is not copied"
        digest = fingerprint({"secret": secret_name, **values})
        if stores.provider_hashes.get(program) == digest:
            return None
        if await stores.db.provider_hash(tenant, program) != digest:
            ciphertext = encrypt(credentials_key.get_secret_value(), values)
            await stores.db.upsert_provider_credentials(
                tenant, program, secret_name, digest, ciphertext
            )
        stores.provider_hashes[program] = digest
        return None
    except kube.KUBE_ERRORS as error:
        return f"reading Secret {secret_name}: {describe(error)}"
    except PG_ERRORS as error:
        return f"copying the API key: database {describe(error)}"


def forget(stores: Stores, program: uuid.UUID) -> None:
    stores.provider_hashes.pop(program, None)
