"""The image's command, health check and stop signal, run as processes against real Kafka
(Apache Kafka), MongoDB (SecantusDB) and an SMTP sink on 127.0.0.1.

What a container engine would do with deploy/Dockerfile, minus the container: start ``CMD``
with the image's ``ENV``, run ``HEALTHCHECK`` until it passes, ask ``/readyz`` like the
Kubernetes readiness probe, then send ``STOPSIGNAL`` and expect a clean exit within uvicorn's
graceful-shutdown timeout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from hwcollab_testing.plugin import private_kafka

from .conftest import DOCKERFILE, REPO, SERVICE_PORTS
from .dockerfile import parse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
SECANTUSD = VENV_BIN / "secantusd-py"
_, STAGES = parse(DOCKERFILE)
RUNTIME = STAGES[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args!r} exited with {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing listens on 127.0.0.1:{port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def backing_services(
    tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[dict[str, str]]:
    """Kafka, MongoDB and an SMTP sink on free loopback ports; their settings as variables."""
    if not SECANTUSD.exists():
        pytest.skip("secantusdb is not installed in this environment")
    data = tmp_path_factory.mktemp("backing")
    mongo_port = free_port()
    logs = data / "logs"
    logs.mkdir()
    with private_kafka(
        data / "kafka", artifacts_dir, label="kafka-container", partitions=2
    ) as kafka_bootstrap:
        mongo = subprocess.Popen(
            [
                *(str(SECANTUSD), "--host", "127.0.0.1", "--port", str(mongo_port)),
                *("--storage-path", str(data / "mongo"), "--sync-on-commit"),
            ],
            stdout=(logs / "mongo.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
        smtp.start()
        try:
            wait_for_port(mongo_port, process=mongo, deadline=time.monotonic() + 60)
            yield {
                "HWCOLLAB_ENV": "dev",
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "MONGODB_URL": f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true&retryWrites=false",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "HWCOLLAB_DATA_DIR": str(data / "var"),
            }
        finally:
            smtp.stop()
            stop(mongo)


def image_environment(service: str) -> dict[str, str]:
    """The runtime stage's ENV for ``service``, listening on a free loopback port."""
    env = {
        key: value.replace("${SERVICE}", service).replace("${PORT}", str(SERVICE_PORTS[service]))
        for key, value in RUNTIME.env().items()
        if key != "PATH"
    }
    env["UVICORN_HOST"] = "127.0.0.1"
    env["UVICORN_PORT"] = str(free_port())
    return env


def run_healthcheck(env: dict[str, str]) -> bool:
    """The image's HEALTHCHECK command (exec form); True when it exits 0."""
    (healthcheck,) = RUNTIME.all("HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[0] == "python"
    completed = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=10, check=False
    )
    return completed.returncode == 0


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - loopback only
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_image_command_serves_probes_and_stops_gracefully(
    service: str, backing_services: dict[str, str], tmp_path: Path
) -> None:
    if not (REPO / "services" / service / "src" / f"hwcollab_{service}" / "app.py").exists():
        pytest.skip(f"hwcollab_{service}.app does not exist yet")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HWCOLLAB_", "KAFKA_", "MONGODB_", "SMTP_", "UVICORN_"))
    }
    env |= backing_services | image_environment(service)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    (command,) = RUNTIME.all("CMD")
    log = tmp_path / f"{service}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            json.loads(command), env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while not run_healthcheck(env):
            assert process.poll() is None, f"{service} exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"HEALTHCHECK never passed:\n{log.read_text()}"
            time.sleep(0.5)
        readyz = f"http://127.0.0.1:{env['UVICORN_PORT']}/readyz"
        while status_of(readyz) != 200:
            assert time.monotonic() < deadline, f"/readyz never answered 200:\n{log.read_text()}"
            time.sleep(0.5)

        (stop_signal_name,) = RUNTIME.all("STOPSIGNAL")
        stop_signal = signal.Signals[stop_signal_name]
        process.send_signal(stop_signal)
        grace = int(env["UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"])
        returncode = process.wait(timeout=grace + 5)
    finally:
        stop(process)
    output_text = log.read_text()
    # uvicorn re-raises the stop signal once it has shut down, as a container engine expects.
    assert returncode in {0, -stop_signal}, output_text[-3000:]
    assert "Application shutdown complete" in output_text
