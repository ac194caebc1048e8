"""``hwcollab employers …``: operator commands of the employer service, over its admin API."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from hwcollab_common.settings import DEV_ADMIN_TOKEN

app = typer.Typer(help="Employer accounts: list those awaiting approval, approve them.")

EmployerUrl = Annotated[
    str, typer.Option(envvar="EMPLOYER_PUBLIC_URL", help="Employer service base URL")
]
AdminToken = Annotated[str, typer.Option(envvar="ADMIN_TOKEN", help="Operator token")]


def _admin_call(
    method: str,
    path: str,
    *,
    employer_url: str,
    admin_token: str,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    console = Console(stderr=True)
    try:
        return httpx.request(
            method,
            employer_url.rstrip("/") + path,
            headers={"Authorization": f"Bearer {admin_token}"},
            params=params,
            timeout=30.0,
        )
    except httpx.HTTPError as error:
        console.print(f"[red]Cannot reach the employer service at {employer_url}:[/red] {error}")
        raise typer.Exit(2) from error


def _fail_unless_ok(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code == 401:
        Console(stderr=True).print("[red]The operator token was refused (ADMIN_TOKEN).[/red]")
        raise typer.Exit(1)
    if response.status_code == 404:
        Console(stderr=True).print(f"[red]No such employer:[/red] {what}")
        raise typer.Exit(1)
    if response.status_code >= 400:
        Console(stderr=True).print(
            f"[red]{what} failed ({response.status_code}):[/red] {response.text}"
        )
        raise typer.Exit(1)
    body: dict[str, Any] = response.json()
    return body


@app.command("approve")
def approve(
    employer_id: Annotated[str, typer.Argument(metavar="ID", help="The employer's id")],
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """Approve an employer: it is listed, and its open openings are announced."""
    response = _admin_call(
        "POST",
        f"/api/admin/employers/{employer_id}/approve",
        employer_url=employer_url,
        admin_token=admin_token,
    )
    body = _fail_unless_ok(response, employer_id)
    Console().print(f"Employer {body['employer_id']} is [bold]{body['status']}[/bold].")


@app.command("pending")
def pending(
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """List the employers awaiting approval."""
    response = _admin_call(
        "GET",
        "/api/admin/employers",
        employer_url=employer_url,
        admin_token=admin_token,
        params={"status": "pending"},
    )
    body = _fail_unless_ok(response, "listing employers")
    table = Table("ID", "Organization", "Contact", "City", "Signed up")
    for employer in body["results"]:
        table.add_row(
            employer["employer_id"],
            employer["organization_name"],
            employer["contact_email"],
            f"{employer['address']['city']}, {employer['address']['state']}",
            employer["created_at"][:10],
        )
    Console().print(table)
