"""One transaction per request, committed before the response starts.

The first dependency that needs the database calls ``request_session``, which takes a
pooled connection for the rest of the request. ``TransactionMiddleware`` ends the
transaction when the response starts: it commits below status 400 and rolls back
otherwise, so a 2xx means committed. When the commit itself fails, the client gets a 503
problem instead of the endpoint's response. An exception that escapes the endpoint rolls
back. The connection goes back to the pool after the response; one that cannot end its
transaction is terminated, never pooled with a tenant still set.

Why not a FastAPI dependency with ``yield``: its exit stack, shielded cancel scope and
generator plumbing cost ~10 % of a request's CPU (py-spy under bench/api_bench.py).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coachops_runtime.kit.db import Session
from coachops_runtime.kit.errors import ServiceUnavailable, problem_response

log = logging.getLogger("coachops.db")
_SCOPE_KEY = "coachops.transaction"


class _RequestTransaction:
    __slots__ = ("connection", "pool", "session")

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.connection: Any = None
        self.session: Session | None = None

    async def open(self, pool: asyncpg.Pool) -> Session:
        if self.session is None:
            connection = await pool.acquire()
            self.pool, self.connection = pool, connection
            if connection.is_in_transaction():  # defence in depth; never expected
                await connection.execute("ROLLBACK")
            self.session = Session(connection)
        return self.session

    async def end(self, *, commit: bool) -> None:
        if self.session is not None:
            await self.session.finish(commit=commit)

    async def release(self) -> None:
        if self.pool is None or self.connection is None:
            return
        connection, self.connection, self.session = self.connection, None, None
        try:
            if connection.is_in_transaction():
                await connection.execute("ROLLBACK")
        except (asyncpg.PostgresError, OSError):
            log.warning("could not roll back a request transaction; closing its connection")
        finally:
            if connection.is_in_transaction():
                connection.terminate()
            await self.pool.release(connection)


async def request_session(scope: Scope, pool: asyncpg.Pool) -> Session:
    """The request's transaction (opened on first use)."""
    transaction = scope.get(_SCOPE_KEY)
    if not isinstance(transaction, _RequestTransaction):
        raise RuntimeError("request_session needs TransactionMiddleware on the app")
    return await transaction.open(pool)


async def release_request_session(scope: Scope) -> None:
    """Commit the request's transaction and return its connection now, for a streaming
    response that needs the database no more (an SSE stream would otherwise hold a pooled
    connection for as long as its client listens)."""
    transaction = scope.get(_SCOPE_KEY)
    if isinstance(transaction, _RequestTransaction):
        await transaction.end(commit=True)
        await transaction.release()


class TransactionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        transaction = scope[_SCOPE_KEY] = _RequestTransaction()
        replaced = False  # the commit failed and a problem response went out instead

        async def send_after_commit(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                try:
                    await transaction.end(commit=message["status"] < 400)
                except (asyncpg.PostgresError, OSError) as error:
                    replaced = True
                    log.warning("commit failed: %s", type(error).__name__)
                    failure = ServiceUnavailable(
                        "the change could not be committed; nothing was saved, retry it",
                        retry_after=1,
                    )
                    response = problem_response(
                        Request(scope),
                        failure.status,
                        failure.slug,
                        failure.title,
                        failure.detail,
                        failure.headers,
                    )
                    await response(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_after_commit)
        finally:
            await transaction.release()
