"""A small demo data set: New England employers and their openings, loaded through the public API.

``hwcollab stack up`` calls :func:`load` when ``HWCOLLAB_DEMO=1`` and the directory is empty;
``hwcollab demo load`` does it by hand. Everything goes through the employer service's HTTP API, so
the openings flow through Kafka to the notifier like any other. Nothing personal is created: the
organizations are fictional, their addresses use ``.example`` domains, and no subscriber is made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from hwcollab_cli.demo_data import EMPLOYERS, DemoEmployer, DemoOpening
from hwcollab_common.settings import DEV_ADMIN_TOKEN

DEMO_PASSWORD = "hwcollab-demo-employer"  # noqa: S105 - a public demo account, never production
READY_TIMEOUT_SECONDS = 120.0

__all__ = ["EMPLOYERS", "DemoEmployer", "DemoOpening", "DemoResult", "load"]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What :func:`load` did."""

    skipped: bool
    employers: int = 0
    openings: int = 0
    accounts: tuple[str, ...] = ()


class DemoLoadError(RuntimeError):
    """The demo data could not be loaded; the message says which request failed."""


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.is_error:
        raise DemoLoadError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def wait_ready(urls: list[str], *, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll each service's ``/readyz`` until it answers 200 (or raise after ``timeout``)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        for url in urls:
            while True:
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise DemoLoadError(f"{url} is not ready after {timeout:.0f} s")
                time.sleep(0.5)


def directory_is_empty(employer_url: str) -> bool:
    with httpx.Client(base_url=employer_url, timeout=10.0) as client:
        page = _check(client.get("/api/directory", params={"page_size": 1}), "directory")
    return int(page["total"]) == 0


def load(
    *,
    subscriber_url: str,
    employer_url: str,
    notifier_url: str,
    admin_token: str,
    password: str = DEMO_PASSWORD,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> DemoResult:
    """Create the demo employers and post their openings, unless the directory has employers.

    Waits for the three services to be ready first. Employers that wait for approval
    (``EMPLOYER_APPROVAL=manual``) are approved with ``admin_token``.
    """
    wait_ready([subscriber_url, employer_url, notifier_url], timeout=timeout)
    if not directory_is_empty(employer_url):
        return DemoResult(skipped=True)
    openings = 0
    with httpx.Client(base_url=employer_url, timeout=30.0) as client:
        for employer in EMPLOYERS:
            registered = client.post(
                "/api/admin/employers",
                json=employer.signup_body(password=password),
                headers={"Authorization": f"Bearer {admin_token}"},
            )
            if registered.status_code == 409:
                continue  # created by an earlier, interrupted load
            account = _check(registered, f"sign up {employer.organization_name}")
            if account["status"] != "approved":
                _check(
                    client.post(
                        f"/api/admin/employers/{account['employer_id']}/approve",
                        headers={"Authorization": f"Bearer {admin_token}"},
                    ),
                    f"approve {employer.organization_name}",
                )
            token = _check(
                client.post(
                    "/api/auth/token",
                    json={"email": employer.contact_email, "password": password},
                ),
                f"sign in {employer.contact_email}",
            )["access_token"]
            for number, opening in enumerate(employer.openings, start=1):
                body = opening.body(apply_url=f"{employer.website}/careers/{number}")
                _check(
                    client.post(
                        "/api/openings",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    ),
                    f"post {opening.title!r}",
                )
                openings += 1
    return DemoResult(
        skipped=False,
        employers=len(EMPLOYERS),
        openings=openings,
        accounts=tuple(employer.contact_email for employer in EMPLOYERS),
    )


app = typer.Typer(help="The demo data set (fictional New England employers and openings).")


@app.command("load")
def load_command(
    subscriber_url: Annotated[
        str, typer.Option(envvar="SUBSCRIBER_PUBLIC_URL", help="Subscriber service")
    ] = "http://127.0.0.1:8001",
    employer_url: Annotated[
        str, typer.Option(envvar="EMPLOYER_PUBLIC_URL", help="Employer service")
    ] = "http://127.0.0.1:8002",
    notifier_url: Annotated[
        str, typer.Option(envvar="NOTIFIER_URL", help="Notifier service")
    ] = "http://127.0.0.1:8003",
    admin_token: Annotated[
        str, typer.Option(envvar="ADMIN_TOKEN", help="Operator token, to approve employers")
    ] = DEV_ADMIN_TOKEN,
    password: Annotated[
        str, typer.Option(help="Password of the demo employer accounts")
    ] = DEMO_PASSWORD,
) -> None:
    """Load the demo employers and openings into an empty directory (skips otherwise)."""
    console = Console()
    try:
        result = load(
            subscriber_url=subscriber_url.rstrip("/"),
            employer_url=employer_url.rstrip("/"),
            notifier_url=notifier_url.rstrip("/"),
            admin_token=admin_token,
            password=password,
        )
    except DemoLoadError as error:
        console.print(f"[red]Demo data not loaded:[/red] {error}")
        raise typer.Exit(1) from error
    if result.skipped:
        console.print("The employer directory already has employers; demo data not loaded.")
        return
    console.print(
        f"Loaded {result.employers} employers and {result.openings} openings. "
        f"Sign in at {employer_url.rstrip('/')}/login with any of these accounts and the "
        f"password [bold]{password}[/bold]:"
    )
    for account in result.accounts:
        console.print(f"  {account}")
