"""Process helpers for tests: the one implementation lives in ``hwcollab_cli.processes``."""

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
]
