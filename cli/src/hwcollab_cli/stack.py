"""``hwcollab stack up``: the embedded stack in the foreground, stopped as a whole on Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hwcollab_cli import components
from hwcollab_cli.processes import (
    ManagedProcess,
    PortInUseError,
    ReadinessTimeoutError,
    http_ok,
    port_accepts,
    port_is_free,
)
from hwcollab_common.settings import DEV_ADMIN_TOKEN

app = typer.Typer(help="The embedded stack: Kafka, MongoDB, MailDev and the services.")
console = Console()

STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class StackPorts:
    kafka: int = 9092
    kafka_controller: int = 9093
    mongo: int = 27017
    smtp: int = 1025
    inbox: int = 1080
    subscriber: int = 8001
    employer: int = 8002
    notifier: int = 8003
    bounces: int = 2525
    """The notifier's SMTP listener for bounce and complaint reports."""

    def service(self, name: str) -> int:
        port: int = getattr(self, name)
        return port

    def wanted(self, services: list[str]) -> list[tuple[int, str]]:
        """Each port the stack will bind, with the component that binds it."""
        wanted = [
            (self.kafka, "Kafka"),
            (self.kafka_controller, "the Kafka controller"),
            (self.mongo, "MongoDB"),
            (self.smtp, "MailDev SMTP"),
            (self.inbox, "MailDev web inbox"),
        ]
        wanted.extend((self.service(name), f"the {name} service") for name in services)
        if "notifier" in services:
            wanted.append((self.bounces, "the notifier's bounce listener"))
        return wanted


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack can be reached; handed to the demo-data loader."""

    kafka_bootstrap: str
    mongodb_url: str
    smtp_port: int
    inbox_url: str
    service_urls: dict[str, str]
    bounce_port: int | None = None


@dataclass
class Stack:
    ports: StackPorts
    data_dir: Path
    partitions: int = 4
    processes: list[ManagedProcess] = field(default_factory=list)
    reaper: components.TransactionReaper | None = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def check_ports(self, services: list[str]) -> None:
        for port, wanted_by in self.ports.wanted(services):
            if not port_is_free(port) or port_accepts(port):
                raise PortInUseError(port=port, wanted_by=wanted_by)

    def _start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        process = ManagedProcess(
            name=name,
            argv=argv,
            log_path=self.log_dir / f"{name}.log",
            env=components.child_env(env or {}),
            cwd=components.REPO_ROOT,
        )
        self.processes.append(process.start())
        return process

    def up(self, services: list[str]) -> StackInfo:
        """Start every component, in order, each one ready before the next."""
        kafka_dir, mongo_dir = self.data_dir / "kafka", self.data_dir / "mongo"
        kafka_dir.mkdir(parents=True, exist_ok=True)
        mongo_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = f"{components.HOST}:{self.ports.kafka}"
        mongodb_url = components.mongo_url(self.ports.mongo)

        with console.status("Starting Kafka…"):
            node = components.KafkaNode(
                port=self.ports.kafka,
                controller_port=self.ports.kafka_controller,
                data_dir=kafka_dir,
                partitions=self.partitions,
            )
            try:
                node.prepare()
                kafka = self._start("kafka", node.argv())
            except components.KafkaNotInstalledError as error:
                raise ReadinessTimeoutError(str(error)) from None
            kafka.wait_ready(lambda: port_accepts(self.ports.kafka), timeout=STARTUP_TIMEOUT)
            components.create_topics_when_ready(
                bootstrap, partitions=self.partitions, timeout=STARTUP_TIMEOUT
            )
        with console.status("Starting MongoDB (SecantusDB)…"):
            mongo = self._start(
                "mongo", components.mongo_argv(port=self.ports.mongo, data_dir=mongo_dir)
            )
            mongo.wait_ready(lambda: components.mongo_answers(mongodb_url), timeout=STARTUP_TIMEOUT)
            self.reaper = components.TransactionReaper(mongodb_url).start()
        with console.status("Starting MailDev…"):
            maildev_argv = components.maildev_argv(
                smtp_port=self.ports.smtp, web_port=self.ports.inbox
            )
            if not Path(maildev_argv[0]).exists():
                raise ReadinessTimeoutError(
                    f"MailDev is not installed ({maildev_argv[0]} is missing): run `make install`"
                )
            maildev = self._start("maildev", maildev_argv)
            maildev.wait_ready(
                lambda: port_accepts(self.ports.smtp) and port_accepts(self.ports.inbox),
                timeout=STARTUP_TIMEOUT,
            )

        service_urls = {
            name: f"http://{components.HOST}:{self.ports.service(name)}" for name in services
        }
        public_urls = {
            name: f"http://{components.HOST}:{self.ports.service(name)}"
            for name in components.SERVICE_NAMES
        }
        env = components.service_env(
            kafka_bootstrap=bootstrap,
            mongodb_url=mongodb_url,
            smtp_port=self.ports.smtp,
            public_urls=public_urls,
        )
        # The employer service asks the notifier for reach estimates, wherever its port is.
        env["NOTIFIER_URL"] = public_urls["notifier"]
        # Each email gets its own bounce address; reports sent there reach the notifier's
        # listener (try `hwcollab bounces list` after delivering one to this port).
        env["BOUNCE_DOMAIN"] = os.environ.get("BOUNCE_DOMAIN") or components.DEV_BOUNCE_DOMAIN
        env["BOUNCE_LISTEN_HOST"] = components.HOST
        env["BOUNCE_LISTEN_PORT"] = str(self.ports.bounces)
        started = [
            (
                name,
                self._start(
                    name, components.service_argv(name=name, port=self.ports.service(name)), env
                ),
            )
            for name in services
        ]
        for name, process in started:
            with console.status(f"Waiting for the {name} service…"):
                health = f"{service_urls[name]}/healthz"
                process.wait_ready(partial(http_ok, health), timeout=STARTUP_TIMEOUT)
        return StackInfo(
            kafka_bootstrap=bootstrap,
            mongodb_url=mongodb_url,
            smtp_port=self.ports.smtp,
            inbox_url=f"http://{components.HOST}:{self.ports.inbox}",
            service_urls=service_urls,
            bounce_port=self.ports.bounces if "notifier" in services else None,
        )

    def failed(self) -> ManagedProcess | None:
        """The first child that exited on its own, if any."""
        return next((p for p in self.processes if not p.is_running()), None)

    def down(self) -> None:
        """Stop every started component, services first, each as a whole process group."""
        for process in reversed(self.processes):
            if process.name == "mongo" and self.reaper is not None:
                self.reaper.stop()
                self.reaper = None
            process.stop(grace=10.0)
        self.processes.clear()


def load_demo_data(info: StackInfo) -> None:
    """Load the demo data set (``hwcollab_cli.demo``) once all three services run."""
    if set(info.service_urls) != set(components.SERVICE_NAMES):
        console.print("Demo data skipped: not every service is available yet.")
        return
    from hwcollab_cli import demo

    with console.status("Loading demo data…"):
        demo.load(
            subscriber_url=info.service_urls["subscriber"],
            employer_url=info.service_urls["employer"],
            notifier_url=info.service_urls["notifier"],
            admin_token=os.environ.get("ADMIN_TOKEN", DEV_ADMIN_TOKEN),
        )


def print_urls(info: StackInfo, log_dir: Path) -> None:
    table = Table(title="HWcollab Opportunities is running", show_lines=False)
    table.add_column("what")
    table.add_column("where")
    for name, url in info.service_urls.items():
        table.add_row(f"{name} service", url)
    table.add_row("inbox (MailDev)", info.inbox_url)
    if info.bounce_port is not None:
        table.add_row("bounce reports (SMTP)", f"{components.HOST}:{info.bounce_port}")
    table.add_row("Kafka", info.kafka_bootstrap)
    table.add_row("MongoDB", info.mongodb_url)
    table.add_row("logs", str(log_dir))
    console.print(table)
    console.print("Press Ctrl-C to stop everything.")


def _wait_for_stop(stack: Stack) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(0.5):
        dead = stack.failed()
        if dead is not None:
            console.print(
                f"[red]{dead.name} exited (code {dead.returncode()}); stopping the stack.[/red]\n"
                f"{dead.log_tail()}"
            )
            raise typer.Exit(1)


@app.command()
def up(
    kafka_port: Annotated[int, typer.Option(envvar="HWCOLLAB_KAFKA_PORT")] = 9092,
    kafka_controller_port: Annotated[
        int, typer.Option(envvar="HWCOLLAB_KAFKA_CONTROLLER_PORT")
    ] = 9093,
    mongo_port: Annotated[int, typer.Option(envvar="HWCOLLAB_MONGO_PORT")] = 27017,
    smtp_port: Annotated[int, typer.Option(envvar="HWCOLLAB_SMTP_PORT")] = 1025,
    inbox_port: Annotated[int, typer.Option(envvar="HWCOLLAB_INBOX_PORT")] = 1080,
    subscriber_port: Annotated[int, typer.Option(envvar="HWCOLLAB_SUBSCRIBER_PORT")] = 8001,
    employer_port: Annotated[int, typer.Option(envvar="HWCOLLAB_EMPLOYER_PORT")] = 8002,
    notifier_port: Annotated[int, typer.Option(envvar="HWCOLLAB_NOTIFIER_PORT")] = 8003,
    bounce_port: Annotated[
        int,
        typer.Option(
            envvar="HWCOLLAB_BOUNCE_PORT", help="The notifier's SMTP port for bounce reports."
        ),
    ] = 2525,
    data_dir: Annotated[Path, typer.Option(envvar="HWCOLLAB_DATA_DIR")] = Path("var"),
    partitions: Annotated[int, typer.Option(envvar="HWCOLLAB_PARTITIONS")] = 4,
    demo: Annotated[bool, typer.Option(envvar="HWCOLLAB_DEMO")] = True,
) -> None:
    """Start Kafka, MongoDB, MailDev and every service in the foreground; Ctrl-C stops all."""
    ports = StackPorts(
        kafka=kafka_port,
        kafka_controller=kafka_controller_port,
        mongo=mongo_port,
        smtp=smtp_port,
        inbox=inbox_port,
        subscriber=subscriber_port,
        employer=employer_port,
        notifier=notifier_port,
        bounces=bounce_port,
    )
    stack = Stack(ports=ports, data_dir=data_dir.resolve(), partitions=partitions)
    services = components.existing_services()
    try:
        stack.check_ports(services)
    except PortInUseError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from None
    # SIGTERM before the wait loop stops the stack the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        info = stack.up(services)
        if demo:
            load_demo_data(info)
        print_urls(info, stack.log_dir)
        _wait_for_stop(stack)
    except ReadinessTimeoutError as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        failed = stack.failed()
        if failed is not None:
            console.print(failed.log_tail())
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("Stopping…"):
            stack.down()
        console.print("Stopped.")
