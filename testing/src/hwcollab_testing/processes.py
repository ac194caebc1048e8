"""Process helpers for tests: the one implementation lives in ``hwcollab_cli.processes``."""

import time

import httpx

from hwcollab_cli.processes import (
    ManagedProcess,
    PortInUseError,
    ReadinessTimeoutError,
    free_port,
    http_ok,
    port_accepts,
    port_is_free,
    wait_until,
)

__all__ = [
    "ManagedProcess",
    "PortInUseError",
    "ReadinessTimeoutError",
    "free_port",
    "http_ok",
    "port_accepts",
    "port_is_free",
    "wait_until",
    "wait_until_ready",
]


def wait_until_ready(url: str, *, timeout: float) -> None:
    """Poll ``{url}/readyz`` until it answers 200; fail with its last answer after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=5.0)
        except httpx.TransportError as error:
            last = repr(error)
        else:
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        time.sleep(0.25)
    raise AssertionError(f"{url}/readyz not ready within {timeout:.0f} s: {last}")
