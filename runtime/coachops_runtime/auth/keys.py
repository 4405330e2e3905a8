"""JWT signing keys from a mounted Secret directory, rotatable without downtime.

Each ``<kid>.pem`` file holds an RSA private key; the file name is the key id. The key
with the greatest kid signs (name kids by date, e.g. ``2025-06-01.pem``); every key
verifies, so tokens signed by an older key stay valid until they expire — remove that file
only after the longest token lifetime has passed. ``<kid>.pub.pem`` files (public keys)
verify only. The directory is re-read every ``reload_seconds``, so a Secret update is picked
up without a restart. The algorithm is pinned: RS256 and nothing else.

A dedicated runtime holds no private key: ``PublicKeyRing`` verifies with the platform's
public keys, which the operator passes in its Deployment (``COACHOPS_JWT_PUBLIC_KEYS``), and
answers 421 where a token would be issued (tokens come from the shared runtime).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from coachops_runtime.kit.errors import CoachopsError, Unauthorized

ALGORITHM = "RS256"
log = logging.getLogger("coachops.auth.keys")


@dataclass(frozen=True)
class _Keys:
    fingerprint: str
    signing_kid: str | None
    signing_key: rsa.RSAPrivateKey | None
    public: dict[str, rsa.RSAPublicKey]


def generate_key_file(directory: Path, kid: str) -> Path:
    """Write a new RSA private key as ``<kid>.pem`` (development and tests)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kid}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _stamp(directory: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What changes when a key file does (a Secret update re-points the mounted files)."""
    stamps = []
    for path in sorted(directory.glob("*.pem")):
        try:
            found = path.stat()
        except OSError:
            continue
        stamps.append((path.name, found.st_ino, found.st_mtime_ns, found.st_size))
    return tuple(stamps)


def _read(directory: Path) -> _Keys:
    files = sorted(p for p in directory.glob("*.pem") if p.is_file())
    digest = hashlib.sha256()
    private: dict[str, rsa.RSAPrivateKey] = {}
    public: dict[str, rsa.RSAPublicKey] = {}
    for path in files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data)
        if path.name.endswith(".pub.pem"):
            kid = path.name.removesuffix(".pub.pem")
            loaded_public = serialization.load_pem_public_key(data)
            if isinstance(loaded_public, rsa.RSAPublicKey):
                public[kid] = loaded_public
            continue
        kid = path.name.removesuffix(".pem")
        loaded = serialization.load_pem_private_key(data, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            log.warning("ignoring non-RSA key", extra={"kid": kid})
            continue
        private[kid] = loaded
        public[kid] = loaded.public_key()
    signing_kid = max(private) if private else None
    return _Keys(
        digest.hexdigest(),
        signing_kid,
        private[signing_kid] if signing_kid else None,
        public,
    )


class KeyRing:
    """Signs with the newest key, verifies with every trusted key.

    Verified tokens are remembered (bounded, per process) so a client's next request with
    the same token skips the RSA check; a hit still checks expiry, audience and type, and
    the memory is dropped whenever the key set changes, so a retired key stops at once.
    """

    CACHE_SIZE = 4096

    def __init__(self, directory: Path, *, issuer: str, reload_seconds: float = 15.0) -> None:
        self.directory = directory
        self.issuer = issuer
        self.reload_seconds = reload_seconds
        self._stamp = _stamp(directory)
        self._keys = _read(directory)
        self._checked = time.monotonic()
        self._verified: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, directory: Path, *, issuer: str, development: bool) -> KeyRing:
        if development and not any(directory.glob("*.pem")):
            kid = "dev-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
            generate_key_file(directory, kid)
            log.warning("generated a development JWT signing key", extra={"kid": kid})
        ring = cls(directory, issuer=issuer)
        if ring._keys.signing_key is None:
            raise RuntimeError(f"no RSA private key (*.pem) in {directory}")
        return ring

    def _current(self) -> _Keys:
        now = time.monotonic()
        if now - self._checked >= self.reload_seconds:
            self._checked = now
            self.reload()
        return self._keys

    def reload(self) -> None:
        """Re-read the keys if their files changed (parsing RSA keys takes tens of ms, and
        this runs on the request path)."""
        try:
            stamp = _stamp(self.directory)
            if stamp == self._stamp:
                return
            keys = _read(self.directory)
        except (OSError, ValueError) as error:
            log.error(
                "could not reload JWT keys; keeping the old ones", extra={"error": str(error)}
            )
            return
        self._stamp = stamp
        if keys.fingerprint != self._keys.fingerprint and keys.signing_key is not None:
            log.info("JWT keys reloaded", extra={"signing_kid": keys.signing_kid})
            self._keys = keys
            self._verified = {}

    @property
    def signing_kid(self) -> str | None:
        return self._current().signing_kid

    def sign(self, claims: dict[str, Any]) -> str:
        keys = self._current()
        assert keys.signing_key is not None
        return jwt.encode(
            claims, keys.signing_key, algorithm=ALGORITHM, headers={"kid": keys.signing_kid}
        )

    def verify(self, token: str, *, audience: str, token_type: str) -> dict[str, Any]:
        """Claims of a valid token, or ``Unauthorized`` (with no detail about why)."""
        keys = self._current()
        cached = self._verified.get(token)
        if cached is not None:
            if (
                cached["exp"] > time.time() - 5
                and cached["aud"] == audience
                and cached["typ"] == token_type
            ):
                return cached
            raise Unauthorized()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthorized() from error
        if header.get("alg") != ALGORITHM:
            raise Unauthorized()
        key = keys.public.get(str(header.get("kid", "")))
        if key is None:
            raise Unauthorized()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                leeway=5,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "typ", "tid"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized() from error
        if claims.get("typ") != token_type:
            raise Unauthorized()
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified = {}
        self._verified[token] = claims
        return claims

    def jwks(self) -> dict[str, Any]:
        documents = []
        for kid, key in sorted(self._current().public.items()):
            jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
            jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
            documents.append(jwk)
        return {"keys": documents}


class TokensIssuedElsewhereError(CoachopsError):
    """A verify-only runtime was asked to issue a token."""

    status, slug, title = 421, "tokens-issued-elsewhere", "Tokens are issued by the platform"


class PublicKeyRing(KeyRing):
    """Verifies with fixed public keys and never signs (a dedicated runtime's ring).

    A key rotation changes the keys the operator puts in the Deployment, which rolls its
    pods, so nothing is re-read here.
    """

    def __init__(self, pems: Mapping[str, str], *, issuer: str) -> None:
        if not pems:
            raise ValueError("no JWT public key given")
        public: dict[str, rsa.RSAPublicKey] = {}
        digest = hashlib.sha256()
        for kid, pem in sorted(pems.items()):
            loaded = serialization.load_pem_public_key(pem.encode())
            if not isinstance(loaded, rsa.RSAPublicKey):
                raise ValueError(f"JWT public key {kid!r} is not an RSA key")
            public[kid] = loaded
            digest.update(kid.encode() + b"\0" + pem.encode())
        self.issuer = issuer
        self._keys = _Keys(digest.hexdigest(), None, None, public)
        self._verified = {}

    def _current(self) -> _Keys:
        return self._keys

    def reload(self) -> None:
        return

    def sign(self, claims: dict[str, Any]) -> str:
        raise TokensIssuedElsewhereError(
            "this runtime serves one tenant and only verifies tokens; sign in through the "
            "platform's shared runtime"
        )
