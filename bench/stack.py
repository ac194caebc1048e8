"""The embedded stack for the end-to-end benchmarks: Apache Kafka (KRaft), MongoDB (SecantusDB), a
recording SMTP sink and the services as uvicorn processes, all on free ports of 127.0.0.1.

Processes are started and stopped with the same code as ``hwcollab stack up`` and the test
plugin (``hwcollab_cli.components`` / ``hwcollab_cli.processes``): each in its own process group,
stopped by its pid when the ``embedded_stack()`` block ends, whatever happened inside it.

The sink (``python -m bench.stack sink``) accepts every message and appends one tab-separated
line per message to a file, flushed at once: arrival time (``time.time()`` in the sink), kind
(``X-HWcollab-Kind``), recipient, opening ids (``X-HWcollab-Opening-Ids``) and, for confirmation
emails only, the confirmation token. Only the headers are looked at, except for confirmations.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import re
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from hwcollab_cli import components
from hwcollab_cli.processes import (
    ManagedProcess,
    ReadinessTimeoutError,
    free_port,
    http_ok,
    port_accepts,
    wait_until,
)

STARTUP_TIMEOUT = 120.0
PARTITIONS = 4


# --- the recording sink (its own process) --------------------------------------------------------

_HEADER = re.compile(rb"^(X-HWcollab-Kind|X-HWcollab-Opening-Ids):[ \t]*(.*?)\r?$", re.M | re.I)
_TOKEN = re.compile(r"confirm\?token=([A-Za-z0-9_.\-]+)")


def _record(content: bytes, rcpt: str) -> str:
    head = content.split(b"\r\n\r\n", 1)[0]
    fields = {
        name.decode().lower(): value.decode(errors="replace")
        for name, value in _HEADER.findall(head)
    }
    kind = fields.get("x-hwcollab-kind", "")
    ids = fields.get("x-hwcollab-opening-ids", "").replace(" ", "")
    token = ""
    if kind == "confirmation":
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        body = parsed.get_body(("plain",))
        found = _TOKEN.search(str(body.get_content()) if body is not None else "")
        token = found.group(1) if found else ""
    return f"{time.time():.6f}\t{kind}\t{rcpt}\t{ids}\t{token}\n"


class _RecordingHandler:
    def __init__(self, log: Any) -> None:
        self.log = log

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = bytes(envelope.original_content or envelope.content)
        for rcpt in envelope.rcpt_tos:
            self.log.write(_record(content, rcpt))
        self.log.flush()
        return "250 OK"


def serve_sink(*, port: int, log_path: Path) -> None:
    """Run the recording sink on ``127.0.0.1:port`` until terminated."""
    import uvloop
    from aiosmtpd.smtp import SMTP

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        with log_path.open("a", encoding="utf-8") as log:
            handler = _RecordingHandler(log)
            await loop.create_server(
                # A fixed hostname: aiosmtpd would otherwise resolve the FQDN per connection.
                lambda: SMTP(handler, hostname="sink.local", ident="sink", enable_SMTPUTF8=True),
                host=components.HOST,
                port=port,
                backlog=1024,
            )
            await asyncio.Event().wait()

    uvloop.run(serve())


@dataclass(frozen=True, slots=True)
class Delivered:
    at: float
    """Arrival time at the sink, ``time.time()`` of the sink process."""
    kind: str
    rcpt: str
    opening_ids: tuple[str, ...]
    token: str


@dataclass
class SinkLog:
    """What the sink has accepted so far, read incrementally from its file."""

    path: Path
    messages: list[Delivered] = field(default_factory=list)
    _offset: int = 0
    _partial: bytes = b""

    def poll(self) -> list[Delivered]:
        """The messages accepted since the last poll (also appended to ``messages``)."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                chunk = file.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        new = []
        for line in lines:
            at, kind, rcpt, ids, token = line.decode().split("\t")
            new.append(
                Delivered(float(at), kind, rcpt, tuple(i for i in ids.split(",") if i), token)
            )
        self.messages.extend(new)
        return new

    def count(self, predicate: Callable[[Delivered], bool]) -> int:
        self.poll()
        return sum(1 for m in self.messages if predicate(m))


# --- services ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    url: str
    process: ManagedProcess


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([0-9.eE+\-]+|NaN)$", re.M)


def metrics(url: str) -> dict[str, float]:
    """A service's ``/metrics`` as ``{'name{labels}': value}``."""
    text = httpx.get(f"{url}/metrics", timeout=10.0).text
    return {name: float(value) for name, value in _METRIC.findall(text)}


def metric_sum(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for key, value in metrics(url).items():
        base, _, rest = key.partition("{")
        if base == name and all(label in rest for label in wanted):
            total += value
    return total


def index_size(notifier_url: str) -> int:
    """Active subscribers in a notifier's match index (its ``/metrics`` gauge)."""
    return int(metric_sum(notifier_url, "hwcollab_notifier_index_subscribers"))


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class BenchStack:
    """A running stack: where Kafka, MongoDB and the sink are, and a way to start services."""

    workdir: Path
    kafka_bootstrap: str
    mongodb_url: str
    smtp_port: int
    sink: SinkLog
    run_id: str
    link_signing_key: str
    admin_token: str
    processes: list[ManagedProcess] = field(default_factory=list)

    def _start(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process.start())
        return process

    def service_env(self, name: str, *, public_urls: Mapping[str, str]) -> dict[str, str]:
        """The environment of a service on this stack: its own database, limits raised."""
        env = components.service_env(
            kafka_bootstrap=self.kafka_bootstrap,
            mongodb_url=self.mongodb_url,
            smtp_port=self.smtp_port,
            public_urls=dict(public_urls),
        )
        return env | {
            "HWCOLLAB_ENV": "test",
            "MONGODB_DATABASE": f"bench_{name}_{self.run_id}",
            "LINK_SIGNING_KEY": self.link_signing_key,
            "ADMIN_TOKEN": self.admin_token,
            "EMPLOYER_APPROVAL": "auto",
            "HWCOLLAB_DEMO": "0",
            "LOG_LEVEL": "WARNING",
            "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
            # Benchmark clients all come from 127.0.0.1: the per-client limits are not measured.
            "SIGNUP_RATE_LIMIT": "1000000/minute",
            "SIGNUP_ADDRESS_RATE_LIMIT": "1000000/minute",
            "LINK_RATE_LIMIT": "1000000/minute",
            "LINK_ADDRESS_RATE_LIMIT": "1000000/minute",
            "LOGIN_RATE_LIMIT": "1000000/minute",
            "WRITE_RATE_LIMIT": "1000000/minute",
            # Digests would run in the middle of a measurement; none is measured here.
            "DIGEST_INTERVAL_SECONDS": "86400",
        }

    def start_service(
        self, name: str, env: Mapping[str, str], *, port: int | None = None
    ) -> Service:
        """Start ``hwcollab_<name>`` under uvicorn; returns once it answers ``/healthz``."""
        port = port or free_port()
        url = f"http://{components.HOST}:{port}"
        process = self._start(
            ManagedProcess(
                name=name,
                argv=components.service_argv(name=name, port=port),
                log_path=self.workdir / "logs" / f"{name}-{port}.log",
                env=components.child_env(dict(env)),
                cwd=components.REPO_ROOT,
            )
        )
        try:
            process.wait_ready(partial(http_ok, f"{url}/healthz"), timeout=STARTUP_TIMEOUT)
        except ReadinessTimeoutError as error:
            raise ReadinessTimeoutError(f"{error}\n{process.log_tail(40)}") from None
        return Service(name=name, url=url, process=process)

    def wait_ready(self, *services: Service) -> None:
        """Until every service answers ``/readyz`` 200 (consumers joined, index loaded)."""
        for service in services:
            service.process.wait_ready(partial(_ready, service.url), timeout=STARTUP_TIMEOUT)

    def stop_service(self, service: Service) -> None:
        service.process.stop(grace=10.0)
        if service.process in self.processes:
            self.processes.remove(service.process)

    def start_services(
        self, names: tuple[str, ...], *, extra: Mapping[str, str] | None = None
    ) -> dict[str, Service]:
        """The named services, with each other's public URLs, all ready."""
        ports = {name: free_port() for name in names}
        public = {name: f"http://{components.HOST}:{port}" for name, port in ports.items()}
        started = {
            name: self.start_service(
                name,
                self.service_env(name, public_urls=public) | dict(extra or {}),
                port=ports[name],
            )
            for name in names
        }
        self.wait_ready(*started.values())
        return started

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(grace=10.0)
        self.processes.clear()


@contextlib.contextmanager
def embedded_stack(workdir: Path) -> Iterator[BenchStack]:
    """Kafka, MongoDB and the recording sink under ``workdir``; every process stopped at exit."""
    kafka_port, mongo_port, smtp_port = free_port(), free_port(), free_port()
    for sub in ("kafka", "mongo", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    stack = BenchStack(
        workdir=workdir,
        kafka_bootstrap=f"{components.HOST}:{kafka_port}",
        mongodb_url=components.mongo_url(mongo_port),
        smtp_port=smtp_port,
        sink=SinkLog(workdir / "sink.tsv"),
        run_id=uuid.uuid4().hex[:8],
        link_signing_key=secrets.token_urlsafe(32),
        admin_token=secrets.token_urlsafe(32),
    )
    try:
        node = components.KafkaNode(
            port=kafka_port,
            controller_port=free_port(),
            data_dir=workdir / "kafka",
            partitions=PARTITIONS,
        )
        node.prepare()
        kafka = stack._start(
            ManagedProcess(name="kafka", argv=node.argv(), log_path=workdir / "logs" / "kafka.log")
        )
        mongo = stack._start(
            ManagedProcess(
                name="mongo",
                argv=components.mongo_argv(port=mongo_port, data_dir=workdir / "mongo"),
                log_path=workdir / "logs" / "mongo.log",
            )
        )
        sink = stack._start(
            ManagedProcess(
                name="sink",
                argv=[
                    sys.executable,
                    "-m",
                    "bench.stack",
                    "sink",
                    "--port",
                    str(smtp_port),
                    "--log",
                    str(stack.sink.path),
                ],
                log_path=workdir / "logs" / "sink.log",
                cwd=components.REPO_ROOT,
            )
        )
        kafka.wait_ready(partial(port_accepts, kafka_port), timeout=STARTUP_TIMEOUT)
        components.create_topics_when_ready(
            stack.kafka_bootstrap, partitions=PARTITIONS, timeout=STARTUP_TIMEOUT
        )
        mongo.wait_ready(
            partial(components.mongo_answers, stack.mongodb_url), timeout=STARTUP_TIMEOUT
        )
        sink.wait_ready(partial(port_accepts, smtp_port), timeout=STARTUP_TIMEOUT)
        yield stack
    finally:
        stack.stop()


def poll_until(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """``wait_until`` for benchmarks: raises ``ReadinessTimeoutError`` naming ``what``."""
    wait_until(condition, timeout=timeout, what=what, interval=interval)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stack")
    commands = parser.add_subparsers(dest="command", required=True)
    sink = commands.add_parser("sink", help="run the recording SMTP sink")
    sink.add_argument("--port", type=int, required=True)
    sink.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    serve_sink(port=args.port, log_path=args.log)


if __name__ == "__main__":
    main()
