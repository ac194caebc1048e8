"""``hwcollab dlq``: list and replay dead-lettered messages through the notifier admin API.

Also the small HTTP helper the ``suppression`` commands share (both talk to the notifier)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from hwcollab_common.settings import DEV_ADMIN_TOKEN

console = Console()
err_console = Console(stderr=True)

NotifierUrl = Annotated[
    str,
    typer.Option("--notifier-url", envvar="NOTIFIER_URL", help="Base URL of the notifier service."),
]
AdminToken = Annotated[
    str,
    typer.Option(
        "--admin-token", envvar="ADMIN_TOKEN", help="The ADMIN_TOKEN the notifier expects."
    ),
]
DEFAULT_NOTIFIER_URL = "http://127.0.0.1:8003"
DEFAULT_ADMIN_TOKEN = DEV_ADMIN_TOKEN


def call(
    method: str,
    path: str,
    *,
    url: str,
    token: str,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> httpx.Response:
    """One admin request; exits with a readable message on connection or HTTP errors."""
    try:
        response = httpx.request(
            method,
            url.rstrip("/") + path,
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )
    except httpx.HTTPError as error:
        err_console.print(f"[red]cannot reach the notifier at {url}: {error}[/red]")
        raise typer.Exit(2) from error
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        err_console.print(f"[red]{response.status_code}: {detail}[/red]")
        raise typer.Exit(1)
    return response


app = typer.Typer(help="Dead-letter queues: list and replay messages that could not be handled.")

Topic = Annotated[str, typer.Argument(help="The original topic, e.g. hwcollab.opening.v1")]


@app.command("list")
def list_dead_letters(
    topic: Topic,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Show the messages in <topic>.dlq with why they failed."""
    body = call(
        "GET", "/api/admin/dlq", url=url, token=token, params={"topic": topic, "limit": limit}
    ).json()
    if as_json:
        console.print_json(json.dumps(body))
        return
    table = Table(title=f"{body['dlq_topic']} ({len(body['messages'])} messages)")
    for column in ("partition", "offset", "key", "error", "value"):
        table.add_column(column)
    for message in body["messages"]:
        table.add_row(
            str(message["partition"]),
            str(message["offset"]),
            message.get("key") or "",
            message["headers"].get("error", ""),
            message["value"][:80],
        )
    console.print(table)


@app.command("replay")
def replay(
    topic: Topic,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "--message", "-m", help="partition:offset of one dead letter; repeat; all when omitted."
        ),
    ] = None,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Publish dead letters back to their original topic (consumers are idempotent)."""
    positions = None
    if message:
        positions = []
        for item in message:
            partition, _, offset = item.partition(":")
            if not (partition.isdigit() and offset.isdigit()):
                raise typer.BadParameter(f"expected partition:offset, got {item!r}")
            positions.append({"partition": int(partition), "offset": int(offset)})
    body = call(
        "POST",
        "/api/admin/dlq/replay",
        url=url,
        token=token,
        json={"topic": topic, "messages": positions},
    ).json()
    console.print(f"replayed {body['replayed']} message(s) to {topic}")
