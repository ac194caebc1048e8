"""Process helpers for tests: the one implementation lives in ``hwcollab_cli.processes``; on top
of it, servers of a test's own that the test takes away and starts again (outage tests)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from hwcollab_cli import components
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
    "RestartableKafka",
    "RestartableMongo",
    "RestartableServer",
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


class RestartableServer:
    """A server of one test's own, taken away and started again on the same port and data
    directory, and stopped by its own pid when the ``async with`` block ends.

    ``stop`` is SIGTERM (SIGKILL only if it does not exit within the grace), ``kill`` is SIGKILL:
    which one a fault calls for depends on the server (see the subclasses).
    """

    KILL_AT_END = False  # how the server is stopped when the block ends: SIGKILL or SIGTERM

    def __init__(self, *, name: str, data_dir: Path, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self._data_dir = data_dir
        self._log_path = log_dir / f"{name}-{self.port}.log"
        self._process: ManagedProcess | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def wait_ready(self, process: ManagedProcess) -> None:
        """Block until the freshly started ``process`` serves (runs in a worker thread)."""
        raise NotImplementedError

    async def start(self) -> None:
        process = ManagedProcess(name=self.name, argv=self.argv(), log_path=self._log_path)
        self._process = process.start()
        await asyncio.to_thread(self.wait_ready, process)

    async def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM, SIGKILL only if it does not exit within ``grace`` seconds."""
        if self._process is not None:
            await asyncio.to_thread(self._process.stop, grace=grace)
            self._process = None

    async def kill(self) -> None:
        """SIGKILL: what it had not written to disk is gone."""
        if self._process is not None:
            await asyncio.to_thread(self._process.kill)
            self._process = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await (self.kill() if self.KILL_AT_END else self.stop())


class RestartableKafka(RestartableServer):
    """An Apache Kafka node (KRaft) with every product topic (2 partitions each).

    Both faults are fair: ``stop`` (SIGTERM, a controlled shutdown) and ``kill`` (SIGKILL).
    What the broker acknowledged is in its log segments, which the operating system keeps when
    the process dies; the restarted node recovers them.
    """

    PARTITIONS = 2
    KILL_AT_END = True

    def __init__(self, *, name: str, data_dir: Path, log_dir: Path) -> None:
        super().__init__(name=name, data_dir=data_dir, log_dir=log_dir)
        self._node = components.KafkaNode(
            port=self.port,
            controller_port=free_port(),
            data_dir=data_dir,
            partitions=self.PARTITIONS,
        )

    @property
    def bootstrap(self) -> str:
        return self._node.bootstrap

    def argv(self) -> list[str]:
        self._node.prepare()
        return self._node.argv()

    def wait_ready(self, process: ManagedProcess) -> None:
        process.wait_ready(lambda: port_accepts(self.port), timeout=60)
        # Creating topics that exist is a no-op; it also waits until the broker speaks Kafka.
        components.create_topics_when_ready(self.bootstrap, partitions=self.PARTITIONS, timeout=60)


class RestartableMongo(RestartableServer):
    """A SecantusDB (MongoDB) server; ``kill`` (SIGKILL) is a fair fault: it runs with
    ``--sync-on-commit``, so what it acknowledged is on disk."""

    KILL_AT_END = True

    @property
    def url(self) -> str:
        return components.mongo_url(self.port)

    def argv(self) -> list[str]:
        return components.mongo_argv(port=self.port, data_dir=self._data_dir)

    def wait_ready(self, process: ManagedProcess) -> None:
        process.wait_ready(lambda: components.mongo_answers(self.url), timeout=60)
