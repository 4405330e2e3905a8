"""Child processes that cannot outlive the stack.

Every component runs in the foreground as a direct child, in its own process group,
with the parent-death signal set, so a crashed harness takes its children with it and a
clean stop terminates the whole group.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


class ComponentError(RuntimeError):
    """A component failed to start or stopped unexpectedly."""


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ManagedProcess:
    """One component process with its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **(self.env or {})}
        self.popen = subprocess.Popen(
            list(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            # Drop root's groups too, or group permissions of root-owned dirs would apply.
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
            process_group=0,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ComponentError(f"{self.name} was never started")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(
        self,
        probe: Callable[[], Awaitable[bool]],
        timeout: float = 60.0,
        interval: float = 0.1,
    ) -> float:
        """Poll ``probe`` until it returns True; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ComponentError(
                    f"{self.name} exited with code {self.popen.returncode if self.popen else '?'}"
                    f" before it was ready; log {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):  # not ready yet, whatever the probe raised
                if await probe():
                    return time.monotonic() - started
            await asyncio.sleep(interval)
        raise ComponentError(
            f"{self.name} was not ready after {timeout:.0f}s;"
            f" log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process group, escalating to SIGKILL; safe to call twice."""
        if self.popen is not None and self.popen.poll() is None:
            _signal_group(self.popen.pid, self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        if self.popen is not None:
            # Children that ignored the group signal (none should) go now.
            _signal_group(self.popen.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash would."""
        if self.popen is not None and self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
