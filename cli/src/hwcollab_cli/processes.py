"""Child processes of the embedded stack: free ports, process groups, readiness, orderly stop.

One implementation shared by the operator CLI and the test fixtures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = [
    "ManagedProcess",
    "PortInUseError",
    "ReadinessTimeoutError",
    "free_port",
    "port_is_free",
    "wait_until",
]


class PortInUseError(RuntimeError):
    """A port that a component wants is already taken."""

    def __init__(self, *, port: int, wanted_by: str) -> None:
        super().__init__(f"port {port} is already in use ({wanted_by} needs it)")
        self.port = port
        self.wanted_by = wanted_by


class ReadinessTimeoutError(RuntimeError):
    """A started process did not become ready before its deadline."""


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now, and that this process has not
    handed out before (ports picked together are only bound later, so the OS may offer one twice).
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free TCP port found")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host`` (nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether ``GET url`` answers 200."""
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``condition`` until it holds; raise when ``timeout`` passes or ``alive`` turns false."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if alive is not None and not alive():
            raise ReadinessTimeoutError(f"{what}: the process exited before it was ready")
        if time.monotonic() >= deadline:
            raise ReadinessTimeoutError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file, stopped as a whole group."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._popen.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, condition: Callable[[], bool], *, timeout: float) -> None:
        wait_until(condition, timeout=timeout, what=self.name, alive=self.is_running)

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM the whole group, SIGKILL it after ``grace`` seconds, and reap the leader."""
        popen = self._popen
        if popen is None:
            return
        pgid = popen.pid  # the leader of its own session: group id == pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            popen.wait(timeout=grace)
        # Children that outlived their leader (or ignored SIGTERM) go too.
        if _group_alive(pgid):
            deadline = time.monotonic() + grace
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(pgid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole group at once and reap the leader."""
        popen = self._popen
        if popen is None:
            return
        _signal_group(popen.pid, signal.SIGKILL)
        popen.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
