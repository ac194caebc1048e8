"""How each component of the embedded stack is started and known to be ready."""

from __future__ import annotations

import asyncio
import importlib
import os
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

from hwcollab_cli.processes import ReadinessTimeoutError, port_accepts
from hwcollab_schemas.topics import ALL_TOPICS

HOST = "127.0.0.1"
SERVICE_NAMES = ("subscriber", "employer", "notifier")
REPO_ROOT = Path(__file__).resolve().parents[3]


def noida_binary() -> Path:
    """The Kafka-speaking server binary shipped inside the noida-db wheel."""
    binary = Path(str(files("noida_db").joinpath("noida-db")))
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def kafka_argv(*, port: int, data_dir: Path) -> list[str]:
    return [
        str(noida_binary()),
        "start",
        "--only",
        "kafka",
        "--host",
        HOST,
        "--kafka-port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]


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
