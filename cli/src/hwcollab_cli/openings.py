"""``hwcollab openings …``: operator commands on single openings, over the employer service's
admin API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hwcollab_cli.employers import AdminToken, EmployerUrl, Reason, admin_call, answer_of
from hwcollab_common.settings import DEV_ADMIN_TOKEN

app = typer.Typer(help="Openings: list the newest, take one down.")


@app.command("take-down")
def take_down(
    opening_id: Annotated[str, typer.Argument(metavar="ID", help="The opening's id")],
    reason: Reason,
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """Take one opening off the site: closed for good, nothing more is sent about it, and its
    employer sees the reason."""
    response = admin_call(
        "POST",
        f"/api/admin/openings/{opening_id}/take-down",
        employer_url=employer_url,
        admin_token=admin_token,
        json={"reason": reason},
    )
    body = answer_of(response, opening_id, kind="opening")
    Console().print(f"Opening {body['opening_id']} ({body['title']}) is [bold]taken down[/bold].")


@app.command("recent")
def recent(
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many")] = 20,
    employer_url: EmployerUrl = "http://127.0.0.1:8002",
    admin_token: AdminToken = DEV_ADMIN_TOKEN,
) -> None:
    """The newest openings of every employer, whatever their state."""
    response = admin_call(
        "GET",
        "/api/admin/openings",
        employer_url=employer_url,
        admin_token=admin_token,
        params={"limit": limit},
    )
    table = Table("ID", "Title", "Organization", "Status", "Posted")
    for opening in answer_of(response, "listing openings"):
        status = opening["close_reason"] or opening["status"]
        table.add_row(
            opening["opening_id"],
            opening["title"],
            opening["organization_name"],
            status,
            opening["posted_at"][:10],
        )
    Console().print(table)
