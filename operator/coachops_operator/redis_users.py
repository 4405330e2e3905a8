"""Redis ACL users: one per dedicated tenant, limited to the tenant's key prefix.

Also what else the operator does in Redis: check it answers, and delete a tenant's keys
when its data is reclaimed.

The password is sent as its SHA-256 (``#<hex>``), never in clear, so neither the slow log
nor MONITOR can show it.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from coachops_operator import fence

STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)

# Data commands only: no KEYS/FLUSH*/CONFIG/DEBUG/ACL, nothing outside the prefix.
COMMAND_RULES = (
    "-@all",
    "+@read",
    "+@write",
    "+@keyspace",
    "+@transaction",
    "+@scripting",
    "+@connection",
    "-@dangerous",
    "+ping",
    "+time",  # the runtime's rate-limit script reads Redis' clock (TIME is in no category above)
)


def acl_rules(prefix: str, password: str) -> list[str]:
    digest = hashlib.sha256(password.encode()).hexdigest()
    return [
        "reset",
        "on",
        f"#{digest}",
        f"~{prefix}*",
        "resetchannels",
        f"&{prefix}*",
        *COMMAND_RULES,
    ]


class RedisUsers:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    async def _command(self, *args: str) -> Any:
        fence.check()
        execute: Any = self.client.execute_command
        return await execute(*args)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> None:
        fence.check()
        await self.client.ping()

    async def ensure_user(self, user: str, prefix: str, password: str) -> None:
        await self._command("ACL", "SETUSER", user, *acl_rules(prefix, password))

    async def user_problems(self, user: str, prefix: str, password: str | None) -> list[str]:
        found = await self._command("ACL", "GETUSER", user)
        if not found:
            return [f"Redis user {user} is missing"]
        info = _pairs(found)
        problems = []
        flags = [_text(flag) for flag in info.get("flags", [])]
        if "on" not in flags:
            problems.append(f"Redis user {user} is disabled")
        keys = _text(info.get("keys", b""))
        if keys != f"~{prefix}*":
            problems.append(f"Redis user {user} may reach keys beyond its prefix")
        channels = _text(info.get("channels", b""))
        if channels != f"&{prefix}*":
            problems.append(f"Redis user {user} may reach channels beyond its prefix")
        if password is not None:
            digest = hashlib.sha256(password.encode()).hexdigest()
            if [digest] != [_text(p) for p in info.get("passwords", [])]:
                problems.append(f"Redis user {user} has a different password")
        return problems

    async def all_users(self, prefix: str) -> dict[str, str]:
        """User name -> ACL rules, for every user whose name starts with ``prefix``."""
        rules: dict[str, str] = {}
        for line in await self._command("ACL", "LIST"):
            parts = _text(line).split(" ", 2)
            if len(parts) == 3 and parts[1].startswith(prefix):
                rules[parts[1]] = parts[2]
        return rules

    async def disable_user(self, user: str) -> None:
        if await self._command("ACL", "GETUSER", user):
            await self._command("ACL", "SETUSER", user, "off")

    async def delete_user(self, user: str) -> None:
        await self._command("ACL", "DELUSER", user)

    async def delete_keys(self, prefix: str) -> int:
        fence.check()
        deleted = 0
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=f"{_glob_escape(prefix)}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await self.client.unlink(*batch)
                batch = []
        if batch:
            deleted += await self.client.unlink(*batch)
        return deleted


def rules_problems(user: str, rules: str | None, prefix: str) -> list[str]:
    """What is wrong with a user's ACL rules as ``ACL LIST`` prints them."""
    if rules is None:
        return [f"Redis user {user} is missing"]
    words = rules.split()
    problems = []
    if "on" not in words:
        problems.append(f"Redis user {user} is disabled")
    if [w for w in words if w.startswith("~") or w == "allkeys"] != [f"~{prefix}*"]:
        problems.append(f"Redis user {user} may reach keys beyond its prefix")
    if [w for w in words if w.startswith("&") or w == "allchannels"] != [f"&{prefix}*"]:
        problems.append(f"Redis user {user} may reach channels beyond its prefix")
    return problems


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(reply: object) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    items = list(reply) if isinstance(reply, list | tuple) else []
    return {_text(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


async def probe_user(url: str, own_prefix: str) -> str | None:
    """Log in as the tenant's user: its prefix works, another tenant's key is refused.

    Returns None when isolated, otherwise what went wrong.
    """
    fence.check()
    client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        await client.set(f"{own_prefix}probe", "1", ex=60)
        try:
            await client.get("coachops:t:someone-else:probe")
        except RedisError as error:
            if "NOPERM" in str(error) or "permission" in str(error).lower():
                return None
            raise
        return "the tenant user could read a key outside its prefix"
    finally:
        await client.aclose()
