"""``hwcollab stack up`` starts the whole stack, and SIGTERM leaves no process behind."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from hwcollab_cli.components import DEV_BOUNCE_DOMAIN, existing_services, new_cluster_id
from hwcollab_common.settings import DEV_ADMIN_TOKEN
from hwcollab_testing.processes import free_port
from hwcollab_testing.waiting import eventually_sync

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HWCOLLAB = [sys.executable, "-m", "hwcollab_cli.main"]


def _stack_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HWCOLLAB_DATA_DIR": str(tmp_path / "data"),
            "HWCOLLAB_DEMO": "0",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    for name in ("KAFKA", "MONGO", "SMTP", "INBOX", "SUBSCRIBER", "EMPLOYER", "NOTIFIER", "BOUNCE"):
        env[f"HWCOLLAB_{name}_PORT"] = str(free_port())
    return env


def _wait_for_output(
    path: Path, text: str, *, process: subprocess.Popen[bytes], timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text(errors="replace")
        if text in output:
            return output
        if process.poll() is not None:
            pytest.fail(f"stack exited with {process.returncode}:\n{output}")
        time.sleep(0.2)
    pytest.fail(f"{text!r} not printed within {timeout} s:\n{path.read_text(errors='replace')}")


def _unless_unavailable(answer: httpx.Response) -> httpx.Response | None:
    return None if answer.status_code == 503 else answer


def test_stack_up_serves_every_component_and_stops_all_of_it(tmp_path: Path) -> None:
    env = _stack_env(tmp_path)
    log = tmp_path / "stack.out"
    with log.open("wb") as out:
        stack = subprocess.Popen(
            [*HWCOLLAB, "stack", "up"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    children: list[psutil.Process] = []
    try:
        output = _wait_for_output(log, "Press Ctrl-C", process=stack, timeout=240)
        children = psutil.Process(stack.pid).children(recursive=True)
        inbox = f"http://127.0.0.1:{env['HWCOLLAB_INBOX_PORT']}"
        assert inbox in output
        # MailDev serves its web inbox to browsers (text/html) and JSON errors to anything else.
        page = httpx.get(inbox, headers={"Accept": "text/html"}, timeout=5)
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        for name in existing_services():
            url = f"http://127.0.0.1:{env[f'HWCOLLAB_{name.upper()}_PORT']}"
            assert url in output
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        if "notifier" in existing_services():
            _the_bounce_listener_answers(int(env["HWCOLLAB_BOUNCE_PORT"]))
        if {"employer", "notifier"} <= set(existing_services()):
            _estimates_reach_the_notifier(f"http://127.0.0.1:{env['HWCOLLAB_EMPLOYER_PORT']}")
        # Kafka, MongoDB, MailDev and each service run as children of the launcher.
        assert len(children) >= 3 + len(existing_services())

        stack.send_signal(signal.SIGTERM)
        assert stack.wait(timeout=60) == 0
    finally:
        if stack.poll() is None:
            stack.send_signal(signal.SIGTERM)
            try:
                stack.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.kill()
                stack.wait()
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], f"left behind: {[p.pid for p in alive]}"
    assert "Stopped." in log.read_text(errors="replace")


def _the_bounce_listener_answers(port: int) -> None:
    """The notifier's bounce listener takes mail for the bounce domain only."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("relay.test")
        client.mail("<>")
        assert client.rcpt("someone@elsewhere.example")[0] == 550
        assert client.rcpt(f"postmaster@{DEV_BOUNCE_DOMAIN}")[0] == 250


def _estimates_reach_the_notifier(employer: str) -> None:
    """The employer service finds the notifier on its moved port (the reach estimate)."""
    contact = f"hr.{os.getpid()}@stack.example"
    password = "a long passphrase for tests"
    with httpx.Client(base_url=employer, timeout=20) as api:
        created = api.post(
            "/api/admin/employers",  # as an operator: verified at once
            headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"},
            json={
                "organization_name": "Stack Care",
                "contact_email": contact,
                "password": password,
                "address": {"city": "Worcester", "state": "MA", "zip": "01608"},
                "settings": ["medical"],
            },
        )
        assert created.status_code == 201, created.text
        issued = api.post("/api/auth/token", json={"email": contact, "password": password})
        auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        body = {
            "title": "Care Manager",
            "role": "care_manager",
            "setting": "medical",
            "employment_type": "full_time",
            "zip": "01608",
            "apply_url": "https://stack.example/apply",
        }
        answer = eventually_sync(  # the notifier's index may still be loading
            lambda: _unless_unavailable(
                api.post("/api/openings/estimate", json=body, headers=auth)
            ),
            timeout=60,
            interval=0.5,
            what="a reach estimate once the notifier's index is loaded",
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["text"].startswith("Fewer than 10")


def test_a_busy_port_is_named_and_the_launcher_exits_at_once(tmp_path: Path) -> None:
    env = _stack_env(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(env["HWCOLLAB_MONGO_PORT"])))
        busy.listen()
        started = time.monotonic()
        result = subprocess.run(
            [*HWCOLLAB, "stack", "up"], env=env, capture_output=True, timeout=60, check=False
        )
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    message = (result.stdout + result.stderr).decode()
    assert f"port {env['HWCOLLAB_MONGO_PORT']} is already in use (MongoDB needs it)" in message
    assert not (tmp_path / "data" / "kafka").exists()


def test_kafka_cluster_ids_never_start_like_an_option() -> None:
    ids = [new_cluster_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids)
    assert len(set(ids)) == len(ids)
