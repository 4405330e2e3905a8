"""Accounts, sessions, key rotation, API keys and end-user tokens, including attacks."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from coachops_runtime.auth import keys as keys_module
from coachops_runtime.auth.keys import KeyRing, generate_key_file
from tests.runtime.conftest import PASSWORD, Creator, Tenants

ISSUER = "https://coachops.dev"


def _private_key(keys_dir: Path, kid: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key((keys_dir / f"{kid}.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _claims(creator: Creator, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "coachops:creator",
        "typ": "access",
        "sub": str(uuid.uuid4()),
        "tid": str(creator.creator_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def _status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/v1/creator", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    return response.status_code


async def test_signup_is_uniform_and_requires_verification(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.provision("beta")
    accepted = {"creator": "beta", "email": creator.email, "password": PASSWORD}
    unknown = {"creator": "nobody", "email": "x@example.com", "password": PASSWORD}
    wrong_email = {"creator": "beta", "email": "mallory@example.com", "password": PASSWORD}
    bodies = []
    for payload in (accepted, unknown, wrong_email):
        response = await client.post("/v1/auth/signup", json=payload)
        assert response.status_code == 202
        bodies.append(response.json())
    assert bodies[0] == bodies[1] == bodies[2]
    # Before verification, the right password is not enough.
    login = {"email": creator.email, "password": PASSWORD}
    assert (await client.post("/v1/auth/login", json=login)).status_code == 403
    token = await tenants.outbox(creator, "verify_email")
    assert (await client.post("/v1/auth/verify", json={"token": token})).status_code == 204
    # Single use.
    assert (await client.post("/v1/auth/verify", json={"token": token})).status_code == 400
    assert (await client.post("/v1/auth/login", json=login)).status_code == 200
    bad = {"email": creator.email, "password": "wrong password!"}
    assert (await client.post("/v1/auth/login", json=bad)).status_code == 401
    nobody = {"email": "ghost@example.com", "password": PASSWORD}
    assert (await client.post("/v1/auth/login", json=nobody)).status_code == 401


async def test_refresh_and_password_reset_ends_sessions(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("gamma")
    login = await client.post("/v1/auth/login", json={"email": creator.email, "password": PASSWORD})
    refresh_token = login.json()["refresh_token"]
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert refreshed.status_code == 200
    # An access token is not a refresh token, and the other way round.
    access = login.json()["access_token"]
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": access})
    ).status_code == 401
    assert await _status(client, refresh_token) == 401

    reset = await client.post("/v1/auth/password-reset", json={"email": creator.email})
    assert reset.status_code == 202
    unknown = await client.post("/v1/auth/password-reset", json={"email": "who@example.com"})
    assert unknown.json() == reset.json()
    token = await tenants.outbox(creator, "password_reset")
    new_password = "a brand new passphrase"
    confirm = await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )
    assert confirm.status_code == 204
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
    ).status_code == 401
    old = {"email": creator.email, "password": PASSWORD}
    assert (await client.post("/v1/auth/login", json=old)).status_code == 401
    new = {"email": creator.email, "password": new_password}
    assert (await client.post("/v1/auth/login", json=new)).status_code == 200


async def test_token_attacks_are_rejected(
    client: httpx.AsyncClient, tenants: Tenants, keys_dir: Path
) -> None:
    creator = await tenants.signed_up("delta")
    assert await _status(client, creator.token) == 200
    key = _private_key(keys_dir, "2026-01-01")
    good = jwt.encode(_claims(creator), key, algorithm="RS256", headers={"kid": "2026-01-01"})
    assert await _status(client, good) == 200

    header, payload, signature = creator.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    # alg: none
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "2026-01-01"}).encode())
    assert await _status(client, f"{none_header}.{payload}.") == 401
    # HS256 signed with the public key (algorithm confusion)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "2026-01-01"}).encode())
    import hashlib
    import hmac

    signing_input = f"{hs_header}.{payload}".encode()
    hs_sig = _b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    assert await _status(client, f"{hs_header}.{payload}.{hs_sig}") == 401
    # expired, not yet valid, wrong audience, wrong issuer, wrong type, missing tenant
    for overrides in (
        {"exp": int(time.time()) - 60, "iat": int(time.time()) - 120},
        {"nbf": int(time.time()) + 600},
        {"aud": "coachops:end-user"},
        {"aud": "coachops:refresh"},
        {"iss": "https://evil.example"},
        {"typ": "refresh"},
        {"tid": None},
    ):
        forged = jwt.encode(
            _claims(creator, **overrides), key, algorithm="RS256", headers={"kid": "2026-01-01"}
        )
        assert await _status(client, forged) == 401, overrides
    # unknown kid, and a key the runtime never trusted
    assert (
        await _status(
            client, jwt.encode(_claims(creator), key, algorithm="RS256", headers={"kid": "nope"})
        )
        == 401
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert (
        await _status(
            client,
            jwt.encode(
                _claims(creator), stranger, algorithm="RS256", headers={"kid": "2026-01-01"}
            ),
        )
        == 401
    )
    # tampered payload: point the token at another tenant
    claims["tid"] = str(uuid.uuid4())
    tampered = _b64(json.dumps(claims).encode())
    assert await _status(client, f"{header}.{tampered}.{signature}") == 401
    # garbage
    for token in ("", "a.b.c", "not-a-token", "cok_", "cok_zz_zz_zz"):
        assert await _status(client, token) == 401
    assert (await client.get("/v1/creator")).status_code == 401
    # the header's shape: another scheme, no token, and the scheme in any case
    for value in (f"Basic {creator.token}", "Bearer", "Bearer   ", creator.token):
        response = await client.get("/v1/creator", headers={"Authorization": value})
        assert response.status_code == 401, value
        assert response.headers["www-authenticate"].startswith("Bearer")
    response = await client.get("/v1/creator", headers={"Authorization": f"bearer {creator.token}"})
    assert response.status_code == 200


async def test_key_rotation_keeps_old_tokens_valid(
    client: httpx.AsyncClient, tenants: Tenants, keys_dir: Path, app: FastAPI
) -> None:
    creator = await tenants.signed_up("epsilon")
    old_token = creator.token
    generate_key_file(keys_dir, "2026-02-01")
    app.state.runtime.keys.reload()
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} == {"2026-01-01", "2026-02-01"}
    assert all(k["alg"] == "RS256" and "d" not in k for k in jwks["keys"])
    login = await client.post("/v1/auth/login", json={"email": creator.email, "password": PASSWORD})
    new_token = login.json()["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-02-01"
    assert await _status(client, old_token) == 200
    assert await _status(client, new_token) == 200
    # Retire the old key: its tokens stop working, the new ones keep working.
    (keys_dir / "2026-01-01.pem").unlink()
    app.state.runtime.keys.reload()
    assert await _status(client, old_token) == 401
    assert await _status(client, new_token) == 200


def test_unchanged_keys_are_not_parsed_again(
    keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reloading runs on the request path: parsing RSA keys only when their files change."""
    ring = KeyRing(keys_dir, issuer="test")
    parsed: list[Path] = []
    original = keys_module._read

    def counting_read(directory: Path) -> Any:
        parsed.append(directory)
        return original(directory)

    monkeypatch.setattr(keys_module, "_read", counting_read)
    ring.reload()
    ring.reload()
    assert parsed == []
    generate_key_file(keys_dir, "2026-03-01")
    ring.reload()
    assert parsed == [keys_dir]
    assert ring.signing_kid == "2026-03-01"


async def test_api_keys_scoped_revocable_tracked(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    creator = await tenants.signed_up("zeta")
    created = await client.post(
        "/v1/api-keys",
        json={"name": "backend", "scopes": ["endusers:read"]},
        headers=creator.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("cok_")
    api = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/end-users", headers=api)).status_code == 200
    denied = await client.post("/v1/end-users", json={}, headers=api)
    assert denied.status_code == 403
    # An API key cannot mint more API keys.
    assert (await client.get("/v1/api-keys", headers=api)).status_code == 403
    listed = (await client.get("/v1/api-keys", headers=creator.headers)).json()
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]
    # Tampered secret, another tenant's id in the prefix.
    assert await _status(client, key[:-2] + ("AA" if not key.endswith("AA") else "BB")) == 401
    other = key.replace(creator.creator_id.hex, uuid.uuid4().hex)
    assert await _status(client, other) == 401
    revoked = await client.delete(
        f"/v1/api-keys/{created.json()['api_key_id']}", headers=creator.headers
    )
    assert revoked.status_code == 204
    assert await _status(client, key) == 401


@pytest.fixture
async def enrolled(client: httpx.AsyncClient, tenants: Tenants) -> tuple[Creator, str, uuid.UUID]:
    creator = await tenants.signed_up("eta")
    program = await tenants.add_program(creator, "fitness")
    user = await client.post(
        "/v1/end-users",
        json={"email": "ann@example.com", "program_ids": [str(program)]},
        headers=creator.headers,
    )
    assert user.status_code == 201, user.text
    return creator, user.json()["end_user_id"], program


async def test_end_user_tokens_and_magic_links(
    client: httpx.AsyncClient, tenants: Tenants, enrolled: tuple[Creator, str, uuid.UUID]
) -> None:
    creator, end_user_id, program = enrolled
    issued = await client.post(
        "/v1/end-user-tokens",
        json={"end_user_id": end_user_id, "program_id": str(program)},
        headers=creator.headers,
    )
    assert issued.status_code == 201
    token = issued.json()["access_token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["end_user_id"] == end_user_id
    # An end-user token is not a creator token, and a creator token is not an end-user token.
    assert await _status(client, token) == 401
    assert (await client.get("/v1/me", headers=creator.headers)).status_code == 401

    sent = await client.post(
        f"/v1/end-users/{end_user_id}/magic-links",
        json={"program_id": str(program)},
        headers=creator.headers,
    )
    assert sent.status_code == 202
    link = await tenants.outbox(creator, "magic_link")
    redeemed = await client.post("/v1/auth/magic-link/redeem", json={"token": link})
    assert redeemed.status_code == 200
    assert redeemed.json()["end_user_id"] == end_user_id
    again = await client.post("/v1/auth/magic-link/redeem", json={"token": link})
    assert again.status_code == 400
