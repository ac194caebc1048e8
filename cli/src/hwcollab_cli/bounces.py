"""``hwcollab bounces``: the bounce and complaint reports the notifier received."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hwcollab_cli.dlq import (
    DEFAULT_ADMIN_TOKEN,
    DEFAULT_NOTIFIER_URL,
    AdminToken,
    NotifierUrl,
    call,
    console,
)

app = typer.Typer(help="Bounce and complaint reports: list, show one, forgive an address.")

OUTCOMES = ("hard", "soft", "complaint", "unknown_message", "malformed", "ignored")


@app.command("list")
def list_bounces(
    outcome: Annotated[
        str | None, typer.Option("--outcome", "-o", help=f"Only one of: {', '.join(OUTCOMES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Show the latest reports and what was done with each."""
    if outcome is not None and outcome not in OUTCOMES:
        raise typer.BadParameter(f"one of {', '.join(OUTCOMES)}", param_hint="--outcome")
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if outcome is not None:
        params["outcome"] = outcome
    body = call("GET", "/api/admin/bounces", url=url, token=token, params=params).json()
    if as_json:
        console.print_json(json.dumps(body))
        return
    table = Table(title=f"bounce reports ({body['total']})")
    for column in ("id", "received", "source", "outcome", "status", "email", "detail"):
        table.add_column(column, overflow="fold")
    for item in body["items"]:
        forgiven = " (forgiven)" if item.get("forgiven_at") else ""
        table.add_row(
            item["bounce_id"],
            item["received_at"],
            item.get("source") or "email",
            item["outcome"] + forgiven,
            item.get("status") or "",
            item.get("email") or "",
            item["detail"],
        )
    console.print(table)


@app.command("show")
def show(
    bounce_id: Annotated[str, typer.Argument(help="The report's id (from `bounces list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """One report: what was read from it, what was done, and the raw message."""
    body = call("GET", f"/api/admin/bounces/{bounce_id}", url=url, token=token).json()
    if as_json:
        console.print_json(json.dumps(body))
        return
    for field in (
        "bounce_id",
        "received_at",
        "outcome",
        "detail",
        "source",
        "kind",
        "status",
        "diagnostic",
        "feedback_type",
        "email",
        "subscriber_id",
        "message_id",
        "mail_from",
        "recipients",
        "size",
        "forgiven_at",
    ):
        if body.get(field) not in (None, "", []):
            console.print(f"[bold]{field}[/bold]: {escape(str(body[field]))}", highlight=False)
    console.rule("raw report")
    console.print(body["raw"], markup=False, highlight=False)


@app.command("forgive")
def forgive(
    email: Annotated[str, typer.Argument(help="The email address.")],
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Let EMAIL be mailed again: off the suppression list, its bounces no longer counting."""
    body = call(
        "POST", "/api/admin/bounces/forgive", url=url, token=token, json={"email": email}
    ).json()
    state = "no longer suppressed" if body["unsuppressed"] else "was not suppressed"
    console.print(f"{body['email']} {state}; {body['bounces_forgiven']} bounce(s) forgiven")
