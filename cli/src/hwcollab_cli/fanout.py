"""``hwcollab fanout OPENING_ID``: how far an opening's emails have gone, from the notifier's
ledger (``GET /api/admin/openings/{id}/fanout``); ``--watch`` follows it with a progress bar."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwcollab_cli.dlq import (
    DEFAULT_ADMIN_TOKEN,
    DEFAULT_NOTIFIER_URL,
    AdminToken,
    NotifierUrl,
    call,
    console,
)

STATUSES = ("pending", "sent", "dropped", "failed")
Fanout = dict[str, Any]


def waiting(body: Fanout) -> int:
    """Matches not settled yet."""
    return int(body["pending"])


def settled(body: Fanout) -> int:
    return int(body["sent"]) + int(body["dropped"]) + int(body["failed"])


def table_of(body: Fanout) -> Table:
    table = Table(title=f"opening {body['opening_id']}: {body['matches']} matches")
    for status in STATUSES:
        table.add_column(status, justify="right")
    table.add_row(*(f"{int(body[status]):,}" for status in STATUSES))
    return table


def follow(
    fetch: Callable[[], Fanout],
    *,
    out: Console,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Fanout:
    """Poll ``fetch`` every ``interval`` seconds, showing settled / matches as a progress bar,
    until nothing is pending; the last answer."""
    body = fetch()
    out.print(
        f"opening {body['opening_id']}: emails settled (sent, dropped or failed) of its matches"
    )
    with Progress(
        MofNCompleteColumn(),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        task = progress.add_task("settled", total=None, detail="")
        while True:
            progress.update(
                task,
                total=max(int(body["matches"]), 1),
                completed=settled(body),
                detail=f"sent {body['sent']:,} · waiting {waiting(body):,} · dropped "
                f"{body['dropped']:,} · failed {body['failed']:,}",
            )
            if waiting(body) == 0:
                break
            sleep(interval)
            body = fetch()
    return body


def fanout(
    opening_id: Annotated[str, typer.Argument(help="The opening's id.")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow it with a progress bar until nothing waits.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between two looks with --watch.")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    """How many of an opening's matches are pending, sent, dropped and failed."""

    def fetch() -> Fanout:
        body: Fanout = call(
            "GET", f"/api/admin/openings/{quote(opening_id, safe='')}/fanout", url=url, token=token
        ).json()
        return body

    body = follow(fetch, out=console, interval=interval) if watch else fetch()
    if as_json:
        console.print_json(json.dumps(body))
        return
    console.print(table_of(body))
