"""A throwaway PostgreSQL cluster on loopback, with the coachops role model bootstrapped.

Roles (DESIGN.md section 4): ``coachops_owner`` owns the schema and runs migrations and
provisioning (it may create tenant roles); ``coachops_runtime`` is the shared runtime's
role, never an owner and without BYPASSRLS.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from coachops_devstack.ports import free_port
from coachops_devstack.process import ComponentError, ManagedProcess

DATABASE = "coachops"
TEMPLATE_DATABASE = "coachops_template"


def pg_binary(name: str) -> str:
    for version in ("17", "16", "15"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the postgresql Debian package")
    return found


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root; use the Debian package's postgres user then."""
    return "postgres" if os.geteuid() == 0 else None


def dsn(user: str, password: str, port: int, database: str = DATABASE) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"


@dataclass
class Postgres:
    workdir: Path
    port: int = field(default_factory=free_port)
    superuser_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    owner_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    runtime_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: ManagedProcess | None = None
    ready_seconds: float = 0.0

    @property
    def superuser_dsn(self) -> str:
        return dsn("postgres", self.superuser_password, self.port)

    @property
    def owner_dsn(self) -> str:
        return dsn("coachops_owner", self.owner_password, self.port)

    @property
    def operator_dsn(self) -> str:
        """The owner's DSN as the operator gets it. This server has no TLS, and the DSN says
        so: with asyncpg's default (sslmode=prefer) every new connection, such as each
        isolation probe, would first build a TLS context and ask the server for TLS."""
        return self.owner_dsn + "?sslmode=disable"

    @property
    def runtime_dsn(self) -> str:
        return dsn("coachops_runtime", self.runtime_password, self.port)

    def dsn_for(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        return dsn(user, password or self.superuser_password, self.port, database)

    async def start(self) -> None:
        user = _run_as()
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        sockets = self.workdir / "sockets"
        sockets.mkdir(exist_ok=True)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.workdir, sockets, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # The postgres user must be able to reach its directory through ours.
            for parent in self.workdir.parents:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        initdb = await asyncio.to_thread(
            subprocess.run,
            [
                pg_binary("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            user=user,
            group=user,
            extra_groups=[] if user else None,
            capture_output=True,
        )
        if initdb.returncode != 0:
            raise ComponentError(f"initdb failed: {initdb.stderr.decode(errors='replace')}")
        pwfile.unlink()
        self.process = ManagedProcess(
            "postgres",
            [
                pg_binary("postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                # Throwaway data: trade durability for speed.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=400",
                "-c",
                "shared_buffers=256MB",
                # Parallel queries share memory through segments PostgreSQL names in
                # /dev/shm by default; anything that remounts or empties /dev/shm (a node's
                # container runtime, a cleanup) then fails every such query. The data
                # directory is the harness's own.
                "-c",
                "dynamic_shared_memory_type=mmap",
            ],
            self.workdir / "postgres.log",
            user=user,
            stop_signal=signal.SIGINT,  # fast shutdown
        )
        self.process.start()

        async def accepts() -> bool:
            conn = await asyncpg.connect(self.dsn_for("postgres"), timeout=2)
            await conn.close()
            return True

        self.ready_seconds = await self.process.wait_ready(accepts, timeout=30)
        await self._bootstrap()

    async def _bootstrap(self) -> None:
        conn = await asyncpg.connect(self.dsn_for("postgres"))
        try:
            await conn.execute(
                f"CREATE ROLE coachops_owner LOGIN CREATEROLE PASSWORD '{self.owner_password}'"
            )
            await conn.execute(
                f"CREATE ROLE coachops_runtime LOGIN PASSWORD '{self.runtime_password}'"
            )
            await conn.execute(f"CREATE DATABASE {DATABASE} OWNER coachops_owner")
        finally:
            await conn.close()
        conn = await asyncpg.connect(self.dsn_for(DATABASE))
        try:
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await conn.execute("ALTER SCHEMA public OWNER TO coachops_owner")
        finally:
            await conn.close()

    async def snapshot_template(self) -> None:
        """Copy the migrated database to TEMPLATE_DATABASE, which nothing ever connects to.

        Tests clone it for a fresh database each; cloning ``coachops`` itself would fail
        whenever a long-running component (an operator under test) is connected to it.
        """
        conn = await asyncpg.connect(self.dsn_for("postgres"))
        try:
            await conn.execute(
                f"CREATE DATABASE {TEMPLATE_DATABASE} TEMPLATE {DATABASE} OWNER coachops_owner"
            )
            await conn.execute(
                f"ALTER DATABASE {TEMPLATE_DATABASE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
            )
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
