"""The platform's JWT public keys, which dedicated runtimes verify tokens with.

The operator reads the same key directory as the shared runtime (``<kid>.pem`` private keys
or ``<kid>.pub.pem`` public keys) and hands dedicated runtimes the public halves only: a
tenant's runtime can check a token but never mint one, so a compromised tenant pod cannot
forge tokens for another tenant. The files are parsed again only when they change.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("coachops.operator.jwt_keys")

Stamp = tuple[tuple[str, int, int], ...]


def _stamp(directory: Path) -> Stamp:
    found = []
    for path in sorted(directory.glob("*.pem")):
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((path.name, info.st_mtime_ns, info.st_size))
    return tuple(found)


def _public_pem(data: bytes, private: bool) -> str | None:
    key = (
        serialization.load_pem_private_key(data, password=None)
        if private
        else serialization.load_pem_public_key(data)
    )
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    if not isinstance(public, rsa.RSAPublicKey):
        return None
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@functools.lru_cache(maxsize=4)
def _read(directory: Path, stamp: Stamp) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name, _mtime, _size in stamp:
        private = not name.endswith(".pub.pem")
        kid = name.removesuffix(".pub.pem") if not private else name.removesuffix(".pem")
        try:
            pem = _public_pem((directory / name).read_bytes(), private)
        except (OSError, ValueError) as error:
            log.warning("skipping unreadable JWT key", extra={"kid": kid, "error": str(error)})
            continue
        if pem is None:
            log.warning("skipping non-RSA JWT key", extra={"kid": kid})
            continue
        keys[kid] = pem
    return keys


def public_keys(directory: Path | None) -> dict[str, str]:
    """kid -> PEM public key of every RSA key in ``directory`` (empty without one)."""
    if directory is None or not directory.is_dir():
        return {}
    return dict(_read(directory, _stamp(directory)))
