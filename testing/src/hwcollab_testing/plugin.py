"""pytest plugin: real Kafka, MongoDB, an SMTP sink and service processes on free ports.

Every fixture is lazy: a test run that requests none of them starts nothing. Every process is
started in its own process group and stopped by its pid at teardown, whatever the tests did.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil
import pytest

from hwcollab_cli import components
from hwcollab_testing.processes import ManagedProcess, free_port, http_ok, port_accepts
from hwcollab_testing.smtp import ReceivedMessage, SmtpSink, SmtpSinkServer

__all__ = ["ReceivedMessage", "RunningService", "ServiceStarter", "SmtpSink"]

TOPIC_PARTITIONS = 4
STARTUP_TIMEOUT = 90.0

_running: list[ManagedProcess] = []


def _stop_leftovers() -> None:
    for process in _running:
        process.kill()


atexit.register(_stop_leftovers)


def _start(process: ManagedProcess) -> ManagedProcess:
    _running.append(process.start())
    return process


def _stop(process: ManagedProcess) -> None:
    process.stop(grace=10.0)
    if process in _running:
        _running.remove(process)


@pytest.fixture(scope="session")
def artifacts_dir(pytestconfig: pytest.Config) -> Path:
    """``tests/artifacts`` under the repository root (logs, screenshots)."""
    path = pytestconfig.rootpath / "tests" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def private_kafka(
    data_dir: Path, artifacts_dir: Path, *, label: str, partitions: int = TOPIC_PARTITIONS
) -> Iterator[str]:
    """An Apache Kafka node of its own (KRaft) with every product topic and its DLQ twin; its
    bootstrap address. For tests whose notifier reads topics from the beginning: on a shared
    broker it would work through (and email) everything earlier tests left there."""
    node = components.KafkaNode(
        port=free_port(), controller_port=free_port(), data_dir=data_dir, partitions=partitions
    )
    node.prepare()
    process = _start(
        ManagedProcess(
            name=label,
            argv=node.argv(),
            log_path=artifacts_dir / "logs" / f"{label}-{node.port}.log",
        )
    )
    try:
        process.wait_ready(lambda: port_accepts(node.port), timeout=STARTUP_TIMEOUT)
        components.create_topics_when_ready(
            node.bootstrap, partitions=partitions, timeout=STARTUP_TIMEOUT
        )
        yield node.bootstrap
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    """An Apache Kafka node with every product topic (4 partitions) and its DLQ twin."""
    with private_kafka(tmp_path_factory.mktemp("kafka"), artifacts_dir, label="kafka") as bootstrap:
        yield bootstrap


@contextlib.contextmanager
def private_mongo(data_dir: Path, artifacts_dir: Path, *, label: str = "mongo") -> Iterator[str]:
    """A SecantusDB server (MongoDB wire protocol, transactions) of its own on a free port; its
    URL. Tests kill services mid-transaction, so a reaper ends what they leave open."""
    port = free_port()
    process = _start(
        ManagedProcess(
            name=label,
            argv=components.mongo_argv(port=port, data_dir=data_dir),
            log_path=artifacts_dir / "logs" / f"{label}-{port}.log",
        )
    )
    try:
        url = components.mongo_url(port)
        process.wait_ready(lambda: components.mongo_answers(url), timeout=STARTUP_TIMEOUT)
        with components.TransactionReaper(url):
            yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[str]:
    """The session's SecantusDB server; each test uses databases of its own in it."""
    with private_mongo(tmp_path_factory.mktemp("mongo"), artifacts_dir) as url:
        yield url


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """An aiosmtpd server that records every message; call ``clear()`` between tests."""
    server = SmtpSinkServer(host=components.HOST, port=free_port())
    sink = server.start()
    try:
        yield sink
    finally:
        server.stop()


@dataclass(frozen=True)
class RunningService:
    name: str
    url: str
    pid: int
    port: int
    process: ManagedProcess
    log_path: Path

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        self.process.kill()


START_ATTEMPTS = 3


class PortTakenError(RuntimeError):
    """A service could not bind the port picked for it."""


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` listens on TCP ``port``."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


class ServiceStarter(Protocol):
    def __call__(
        self, name: str, env: Mapping[str, str], *, port: int | None = None
    ) -> RunningService: ...


class _ServiceFactory:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[RunningService] = []

    def __call__(
        self, name: str, env: Mapping[str, str], *, port: int | None = None
    ) -> RunningService:
        """``port``: when the caller must know it first (e.g. for the services' public URLs)."""
        if port:
            return self._start(name, env, port=port)
        for attempt in range(START_ATTEMPTS):
            try:
                return self._start(name, env, port=free_port())
            except PortTakenError as taken:
                # Between picking the port and binding it another process took it.
                sys.stderr.write(f"{taken}; trying another port ({attempt + 1})\n")
        raise RuntimeError(f"{name} found no free port in {START_ATTEMPTS} attempts")

    def _start(self, name: str, env: Mapping[str, str], *, port: int) -> RunningService:
        log_path = self.log_dir / f"{name}-{port}.log"
        child_env = dict(os.environ)
        child_env.update(env)
        process = _start(
            ManagedProcess(
                name=name,
                argv=components.service_argv(name=name, port=port),
                log_path=log_path,
                env=child_env,
                cwd=Path.cwd(),
            )
        )
        url = f"http://{components.HOST}:{port}"
        service = RunningService(
            name=name, url=url, pid=process.pid, port=port, process=process, log_path=log_path
        )
        self.started.append(service)
        try:
            # Its own process must be the one answering: another server may hold the port.
            process.wait_ready(
                lambda: listens(process.pid, port) and http_ok(f"{url}/healthz"),
                timeout=STARTUP_TIMEOUT,
            )
        except Exception as error:
            if "address already in use" in process.log_tail(40):
                self.started.remove(service)
                _stop(process)
                raise PortTakenError(f"{name}: port {port} is taken") from error
            sys.stderr.write(f"--- {name} log ({log_path}) ---\n{process.log_tail(40)}\n")
            raise
        return service

    def stop_all(self) -> None:
        for service in reversed(self.started):
            _stop(service.process)
        self.started.clear()


@pytest.fixture
def service_process(artifacts_dir: Path) -> Iterator[ServiceStarter]:
    """``start(name, env)`` runs ``hwcollab_<name>`` under uvicorn; stopped after the test."""
    factory = _ServiceFactory(artifacts_dir / "logs")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def session_service_process(artifacts_dir: Path) -> Iterator[ServiceStarter]:
    """Like ``service_process``, for session-scoped fixtures; stopped at the end of the session."""
    factory = _ServiceFactory(artifacts_dir / "logs")
    try:
        yield factory
    finally:
        factory.stop_all()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser journeys run last: they start a whole stack of their own and drive Chromium
    through Playwright's sync driver, which holds an event loop in the main thread while it runs.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
