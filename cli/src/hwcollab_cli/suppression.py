"""``hwcollab suppression``: addresses the notifier never writes to."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from hwcollab_cli.dlq import (
    DEFAULT_ADMIN_TOKEN,
    DEFAULT_NOTIFIER_URL,
    AdminToken,
    NotifierUrl,
    call,
    console,
)

app = typer.Typer(help="The suppression list: list, add and remove addresses.")

Email = Annotated[str, typer.Argument(help="The email address.")]


@app.command("list")
def list_suppressions(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Show suppressed addresses and why."""
    body = call(
        "GET",
        "/api/admin/suppressions",
        url=url,
        token=token,
        params={"limit": limit, "offset": offset},
    ).json()
    if as_json:
        console.print_json(json.dumps(body))
        return
    table = Table(title=f"suppressed addresses ({body['total']})")
    for column in ("email", "reason", "since"):
        table.add_column(column)
    for item in body["items"]:
        table.add_row(item.get("email") or "(erased)", item["reason"], item["created_at"])
    console.print(table)


@app.command("add")
def add(
    email: Email,
    reason: Annotated[str, typer.Option(help="Why.")] = "added by an operator",
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Never write to EMAIL again (until removed)."""
    body = call(
        "POST",
        "/api/admin/suppressions",
        url=url,
        token=token,
        json={"email": email, "reason": reason},
    ).json()
    state = "suppressed" if body["added"] else "was already suppressed"
    console.print(f"{body['email']} {state}")


@app.command("remove")
def remove(
    email: Email,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Allow writing to EMAIL again."""
    call("DELETE", f"/api/admin/suppressions/{email}", url=url, token=token)
    console.print(f"{email} is no longer suppressed")
