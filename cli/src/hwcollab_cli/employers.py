"""``hwcollab employers …``: operator commands of the employer service, over its admin API."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from hwcollab_common.settings import DEV_ADMIN_TOKEN

app = typer.Typer(
    help="Employer accounts: list them by status; approve, reject, suspend and reinstate them."
)

EmployerUrl = Annotated[
    str, typer.Option(envvar="EMPLOYER_PUBLIC_URL", help="Employer service base URL")
]
AdminToken = Annotated[str, typer.Option(envvar="ADMIN_TOKEN", help="Operator token")]


Reason = Annotated[str, typer.Option("--reason", help="Why (shown to the employer)")]


def admin_call(
    method: str,
    path: str,
    *,
    employer_url: str,
    admin_token: str,
    params: dict[str, Any] | None = None,
    json: dict[str, Any] | None = None,
) -> httpx.Response:
    """A call to the employer service's admin API; exit 2 when the service cannot be reached."""
    console = Console(stderr=True)
    try:
        return httpx.request(
            method,
            employer_url.rstrip("/") + path,
            headers={"Authorization": f"Bearer {admin_token}"},
            params=params,
            json=json,
            timeout=30.0,
        )
    except httpx.HTTPError as error:
        console.print(f"[red]Cannot reach the employer service at {employer_url}:[/red] {error}")
        raise typer.Exit(2) from error


def answer_of(response: httpx.Response, what: str, *, kind: str = "employer") -> Any:
    """The JSON answer; exit 1 with the service's reason when it refused."""
    if response.status_code == 401:
        Console(stderr=True).print("[red]The operator token was refused (ADMIN_TOKEN).[/red]")
        raise typer.Exit(1)
    if response.status_code == 404:
        Console(stderr=True).print(f"[red]No such {kind}:[/red] {what}")
        raise typer.Exit(1)
    if response.status_code == 409:
        detail = response.json().get("detail", response.text)
        Console(stderr=True).print(f"[red]Cannot do that now:[/red] {detail}")
        raise typer.Exit(1)
    if response.status_code >= 400:
        Console(stderr=True).print(
            f"[red]{what} failed ({response.status_code}):[/red] {response.text}"
        )
        raise typer.Exit(1)
    return response.json()


@app.command("approve")
def approve(
    employer_id: Annotated[str, typer.Argument(metavar="ID", help="The employer's id")],
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """Approve an employer: it is listed, and its open openings are announced."""
    response = admin_call(
        "POST",
        f"/api/admin/employers/{employer_id}/approve",
        employer_url=employer_url,
        admin_token=admin_token,
    )
    body = answer_of(response, employer_id)
    Console().print(f"Employer {body['employer_id']} is [bold]{body['status']}[/bold].")


def _decide(
    action: str, employer_id: str, *, reason: str | None, employer_url: str, admin_token: str
) -> None:
    response = admin_call(
        "POST",
        f"/api/admin/employers/{employer_id}/{action}",
        employer_url=employer_url,
        admin_token=admin_token,
        json=None if reason is None else {"reason": reason},
    )
    body = answer_of(response, employer_id)
    Console().print(f"Employer {body['employer_id']} is [bold]{body['status']}[/bold].")


@app.command("reject")
def reject(
    employer_id: Annotated[str, typer.Argument(metavar="ID", help="The employer's id")],
    reason: Reason,
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """Reject a pending employer: never listed; it sees the reason on its dashboard."""
    _decide(
        "reject", employer_id, reason=reason, employer_url=employer_url, admin_token=admin_token
    )


@app.command("suspend")
def suspend(
    employer_id: Annotated[str, typer.Argument(metavar="ID", help="The employer's id")],
    reason: Reason,
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """Suspend an approved employer: it and its openings leave the site, and emails about
    them still queued are dropped."""
    _decide(
        "suspend", employer_id, reason=reason, employer_url=employer_url, admin_token=admin_token
    )


@app.command("reinstate")
def reinstate(
    employer_id: Annotated[str, typer.Argument(metavar="ID", help="The employer's id")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="A note for the employer (optional)")
    ] = None,
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """Reinstate a suspended employer: listed again; nobody is emailed twice."""
    _decide(
        "reinstate", employer_id, reason=reason, employer_url=employer_url, admin_token=admin_token
    )


Status = Annotated[str, typer.Option("--status", help="pending, approved, suspended or rejected")]


@app.command("list")
def list_employers(
    status: Status = "pending",
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """List the employers with a status, oldest first."""
    _table(status, employer_url=employer_url, admin_token=admin_token)


@app.command("pending")
def pending(
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """List the employers awaiting approval."""
    _table("pending", employer_url=employer_url, admin_token=admin_token)


def _table(status: str, *, employer_url: str, admin_token: str) -> None:
    response = admin_call(
        "GET",
        "/api/admin/employers",
        employer_url=employer_url,
        admin_token=admin_token,
        params={"status": status},
    )
    body = answer_of(response, "listing employers")
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
