"""How each component of the embedded stack is started and known to be ready."""

from __future__ import annotations

import asyncio
import base64
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hwcollab_cli.processes import ReadinessTimeoutError, port_accepts
from hwcollab_schemas.topics import ALL_TOPICS

HOST = "127.0.0.1"
SERVICE_NAMES = ("subscriber", "employer", "notifier")
REPO_ROOT = Path(__file__).resolve().parents[3]


KAFKA_POM = REPO_ROOT / "kafka" / "pom.xml"
KAFKA_HEAP = "512m"


class KafkaNotInstalledError(RuntimeError):
    """The broker's jars or a Java runtime are missing: ``make install`` fetches the jars."""


def kafka_version(pom: Path = KAFKA_POM) -> str:
    """The Apache Kafka version pinned in ``kafka/pom.xml`` (its ``kafka.version`` property)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if match is None:
        raise KafkaNotInstalledError(f"{pom} pins no kafka.version")
    return match.group(1).strip()


def kafka_libs(version: str | None = None) -> Path:
    """Where ``make install`` puts the broker's jars: ``HWCOLLAB_KAFKA_LIBS``, or a directory per
    version under the user's cache (``$XDG_CACHE_HOME`` or ``~/.cache``), shared by every clone."""
    configured = os.environ.get("HWCOLLAB_KAFKA_LIBS")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hwcollab" / f"kafka-{version or kafka_version()}"


def java_binary() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` from ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaNotInstalledError("Kafka needs Java 17 or newer: no `java` on PATH")
    return found


def _kafka_classpath() -> str:
    libs = kafka_libs()
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise KafkaNotInstalledError(
            f"the Kafka broker's jars are not in {libs}: run `make install`"
        )
    return str(libs / "*")


KAFKA_LOG4J = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d{ISO8601}] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      # each start prints every setting several times; warnings still show
      - name: org.apache.kafka.common.config.AbstractConfig
        level: WARN
      - name: org.apache.kafka.clients
        level: WARN
      - name: kafka.log
        level: WARN
      - name: org.apache.kafka.storage
        level: WARN
"""


def kafka_server_properties(
    *, port: int, controller_port: int, data_dir: Path, partitions: int
) -> str:
    """``server.properties`` of a single-node KRaft cluster (broker and controller in one
    process) on 127.0.0.1.

    Settings that matter to correctness are those of a production cluster (see
    ``deploy/README.md``): no topic is made by accident, no out-of-sync replica is ever elected,
    and a write is acknowledged once every in-sync replica has it (producers use ``acks=all``).
    A single node can hold one replica only, so replication factors and ``min.insync.replicas``
    are 1 here (3 and 2 in production). Group joins are not delayed: one node, few members.
    """
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{controller_port}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}
advertised.listeners=PLAINTEXT://{HOST}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir / "log"}
num.partitions={partitions}
auto.create.topics.enable=false
unclean.leader.election.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""


def new_cluster_id() -> str:
    """A random KRaft cluster id (URL-safe base64 of 16 bytes) that does not start with "-",
    which the storage tool would read as an option; Kafka's own ``Uuid.randomUuid`` skips those
    too."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class KafkaNode:
    """An Apache Kafka node of the embedded stack: its files live in ``data_dir``
    (``server.properties``, ``log4j2.yaml`` and the storage directory ``log/``)."""

    port: int
    controller_port: int
    data_dir: Path
    partitions: int = 4

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            java_binary(),
            f"-Xms{KAFKA_HEAP}",
            f"-Xmx{KAFKA_HEAP}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
            "-cp",
            _kafka_classpath(),
            main_class,
            *args,
        ]

    def prepare(self) -> None:
        """Write the configuration and, on first use, format the storage directory with a new
        cluster id (KRaft); a formatted directory is kept, so data survives restarts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(
            kafka_server_properties(
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir,
                partitions=self.partitions,
            )
        )
        (self.data_dir / "log4j2.yaml").write_text(KAFKA_LOG4J)
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self.properties_path),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaNotInstalledError(
                f"formatting Kafka storage in {self.data_dir} failed: "
                f"{(result.stderr or result.stdout)[-2000:]}"
            )

    def argv(self) -> list[str]:
        """The broker's command line; call :meth:`prepare` first."""
        return self._java("kafka.Kafka", str(self.properties_path))


def mongo_argv(*, port: int, data_dir: Path) -> list[str]:
    server = Path(sys.executable).with_name("secantusd-py")
    return [
        str(server),
        "--host",
        HOST,
        "--port",
        str(port),
        "--storage-path",
        str(data_dir),
        "--sync-on-commit",
        "--log-level",
        "WARNING",
    ]


def mongo_url(port: int) -> str:
    return f"mongodb://{HOST}:{port}/?directConnection=true&retryWrites=false"


def maildev_binary(root: Path = REPO_ROOT) -> Path:
    return root / "node_modules" / ".bin" / "maildev"


def maildev_argv(*, smtp_port: int, web_port: int, root: Path = REPO_ROOT) -> list[str]:
    return [
        str(maildev_binary(root)),
        "--smtp",
        str(smtp_port),
        "--ip",
        HOST,
        "--web",
        str(web_port),
        "--web-ip",
        HOST,
        "--silent",
    ]


def service_argv(*, name: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"hwcollab_{name}.app:create_app",
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def service_exists(name: str) -> bool:
    """A service exists once ``hwcollab_<name>.app`` imports and offers ``create_app``."""
    try:
        module = importlib.import_module(f"hwcollab_{name}.app")
    except ImportError:
        return False
    return callable(getattr(module, "create_app", None))


def existing_services() -> list[str]:
    return [name for name in SERVICE_NAMES if service_exists(name)]


DEV_BOUNCE_DOMAIN = "bounces.hwcollab.example"
"""The bounce domain of a local stack (its listener is on localhost; no MX points there)."""


def service_env(
    *,
    kafka_bootstrap: str,
    mongodb_url: str,
    smtp_port: int,
    public_urls: dict[str, str],
) -> dict[str, str]:
    """The environment that points a service at the running stack."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongodb_url,
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(smtp_port),
        "SMTP_STARTTLS": "false",
    }
    for name, url in public_urls.items():
        env[f"{name.upper()}_PUBLIC_URL"] = url
    return env


class TransactionReaper:
    """Ends transactions that crashed clients left open on the embedded MongoDB, as mongod does.

    A client killed in the middle of a multi-document transaction leaves it open, holding the
    documents it wrote; every writer of those documents waits until the server aborts it. mongod
    aborts it in the background once it has been idle for ``transactionLifetimeLimitSeconds``
    (60 s). SecantusDB applies the same limit, but only when some transaction statement arrives:
    on a quiet server, or one whose clients all wait on those very documents, none arrives and
    they wait for good. This thread sends one read-only transaction statement every few seconds,
    so that a crash costs what it costs with mongod: about a minute on the documents involved.
    """

    def __init__(self, url: str, *, interval: float = 5.0) -> None:
        self._url = url
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="transaction-reaper", daemon=True)

    def start(self) -> TransactionReaper:
        self._thread.start()
        return self

    def __enter__(self) -> TransactionReaper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[dict[str, object]] = MongoClient(
            self._url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, socketTimeoutMS=10000
        )
        probe = client["hwcollab_embedded"]["transaction_reaper"]
        try:
            while not self._stopped.wait(self._interval):
                try:
                    with client.start_session() as session:
                        session.start_transaction()
                        probe.find_one({}, session=session)
                        session.abort_transaction()
                except PyMongoError:
                    continue  # the server is away (restarting, or an outage test): try again
        finally:
            client.close()


def mongo_answers(url: str) -> bool:
    # Imported here: every ``hwcollab`` command loads this module, few of them need pymongo.
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, object]] = MongoClient(
        url, serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def create_topics_when_ready(bootstrap: str, *, partitions: int, timeout: float) -> None:
    """Wait until the broker answers the Kafka protocol, then create every product topic."""
    from hwcollab_common.kafka_admin import ensure_topics  # aiokafka: only when needed

    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if port_accepts(int(port), host):
            try:
                # A thread of its own: callers may already run an event loop (async fixtures).
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pool.submit(
                        asyncio.run,
                        asyncio.wait_for(
                            ensure_topics(bootstrap, ALL_TOPICS, partitions=partitions), timeout=10
                        ),
                    ).result()
            except Exception as error:  # the broker may still be starting; retried below
                last_error = error
            else:
                return
        time.sleep(0.2)
    raise ReadinessTimeoutError(
        f"Kafka at {bootstrap}: no topics after {timeout:.0f} s ({last_error})"
    )


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
