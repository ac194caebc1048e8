"""``hwcollab dlq``: list and replay dead-lettered messages through the notifier admin API.

Also the small HTTP helper the ``suppression`` commands share (both talk to the notifier)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
        err_console.print(
            f"[red]cannot reach the notifier at {escape(url)}: {escape(str(error))}[/red]"
        )
        raise typer.Exit(2) from error
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        err_console.print(f"[red]{response.status_code}: {escape(str(detail))}[/red]")
        raise typer.Exit(1)
    return response


app = typer.Typer(
    help=(
        "Dead-letter queues: see why messages could not be handled, and publish them again once "
        "the cause is fixed. Consumers skip events they have already applied (by event_id), so "
        "replaying twice does no harm."
    ),
    no_args_is_help=True,
)

Topic = Annotated[
    str, typer.Argument(help="The original topic (not its .dlq), e.g. hwcollab.opening.v1")
]
Reason = Annotated[
    str | None,
    typer.Option(
        "--reason", "-r", help="Only dead letters whose error contains this text (any case)."
    ),
]
Contains = Annotated[
    str | None,
    typer.Option(
        "--contains",
        "-c",
        help="Only dead letters whose value contains this text, e.g. an event_id.",
    ),
]
Limit = Annotated[
    int,
    typer.Option(min=1, max=1000, help="Read at most this many dead letters (oldest first)."),
]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of ``<topic>.dlq`` as the notifier lists it."""

    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: str

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        return self.headers.get("error", "")

    @property
    def truncated(self) -> bool:
        """Only a prefix of the original was kept (it was too large): it cannot be replayed."""
        return self.headers.get("truncated") == "true"

    @property
    def original(self) -> str:
        partition = self.headers.get("original_partition", "?")
        offset = self.headers.get("original_offset", "?")
        return f"{partition}:{offset}"

    def preview(self, width: int = 80) -> str:
        if self.truncated:
            size = self.headers.get("original_size", "?")
            digest = self.headers.get("sha256", "")[:12]
            return f"[truncated copy of {size} bytes, sha256 {digest}…] {self.value[:40]}"
        return self.value[:width]


def fetch_dead_letters(
    topic: str, *, limit: int, url: str, token: str
) -> tuple[str, list[DeadLetter]]:
    """The name of ``<topic>.dlq`` and its first ``limit`` messages."""
    body = call(
        "GET", "/api/admin/dlq", url=url, token=token, params={"topic": topic, "limit": limit}
    ).json()
    letters = [
        DeadLetter(
            partition=int(m["partition"]),
            offset=int(m["offset"]),
            key=m.get("key"),
            headers=dict(m.get("headers") or {}),
            value=str(m.get("value", "")),
        )
        for m in body["messages"]
    ]
    return str(body["dlq_topic"]), letters


def parse_positions(items: list[str]) -> set[tuple[int, int]]:
    """``partition:offset`` strings as pairs; a malformed one is a usage error."""
    positions = set()
    for item in items:
        partition, _, offset = item.partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise typer.BadParameter(f"expected partition:offset, got {item!r}", param_hint="-m")
        positions.add((int(partition), int(offset)))
    return positions


def select(
    letters: list[DeadLetter],
    *,
    positions: set[tuple[int, int]] | None = None,
    reason: str | None = None,
    contains: str | None = None,
) -> list[DeadLetter]:
    """The dead letters that pass every given filter."""
    chosen = letters
    if positions is not None:
        chosen = [d for d in chosen if (d.partition, d.offset) in positions]
    if reason:
        chosen = [d for d in chosen if reason.casefold() in d.reason.casefold()]
    if contains:
        chosen = [d for d in chosen if contains in d.value]
    return chosen


def _warn_if_cut(letters: list[DeadLetter], limit: int) -> None:
    if len(letters) >= limit:
        err_console.print(
            f"[yellow]only the first {limit} dead letters were read; raise --limit "
            "(up to 1000) to see more[/yellow]"
        )


LIST_HELP = (
    "Show the messages in <topic>.dlq (oldest first) with why each one failed.\n\n"
    "POSITION (partition:offset in the .dlq topic) is what `replay -m` takes; ORIGINAL is where "
    "the message was on <topic>. A truncated copy (the original was too large to keep) shows "
    "the original size and SHA-256 and cannot be replayed."
)
REPLAY_HELP = (
    "Publish dead letters back to their original topic, once their cause is fixed.\n\n"
    "Replay publishes the stored message unchanged: fix what made it fail first (a consumer bug, "
    "an outage, a missing reference). Without -m, --reason or --contains every dead letter read "
    "is replayed; try --dry-run first. Truncated copies are never replayed.\n\n"
    "Consumers skip events they have already applied (by event_id), so a message replayed twice "
    "is applied once. A message that still fails is dead-lettered again."
)


@app.command("list", help=LIST_HELP)
def list_dead_letters(
    topic: Topic,
    reason: Reason = None,
    contains: Contains = None,
    limit: Limit = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the messages as JSON (for scripts).")
    ] = False,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    dlq, letters = fetch_dead_letters(topic, limit=limit, url=url, token=token)
    chosen = select(letters, reason=reason, contains=contains)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "topic": topic,
                    "dlq_topic": dlq,
                    "messages": [
                        {
                            "partition": d.partition,
                            "offset": d.offset,
                            "key": d.key,
                            "headers": d.headers,
                            "value": d.value,
                        }
                        for d in chosen
                    ],
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"{dlq}: {len(chosen)} of {len(letters)} message(s) read")
    for column in ("position", "original", "failed at", "key", "reason", "value"):
        table.add_column(column, overflow="fold")
    for d in chosen:
        # Text, not markup: a poison message may well contain "[...]".
        table.add_row(
            d.position,
            d.original,
            d.headers.get("failed_at", "")[:19],
            Text((d.key or "")[:40]),
            Text(d.reason),
            Text(d.preview()),
        )
    console.print(table)
    _warn_if_cut(letters, limit)


@app.command("replay", help=REPLAY_HELP)
def replay(
    topic: Topic,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "--message",
            "-m",
            help="POSITION (partition:offset in the .dlq, as `list` shows it); repeatable.",
        ),
    ] = None,
    reason: Reason = None,
    contains: Contains = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be replayed; publish nothing.")
    ] = False,
    limit: Limit = 1000,
    url: NotifierUrl = DEFAULT_NOTIFIER_URL,
    token: AdminToken = DEFAULT_ADMIN_TOKEN,
) -> None:
    positions = parse_positions(message) if message else None
    _, letters = fetch_dead_letters(topic, limit=limit, url=url, token=token)
    chosen = select(letters, positions=positions, reason=reason, contains=contains)
    truncated = [d for d in chosen if d.truncated]
    chosen = [d for d in chosen if not d.truncated]
    if positions is not None:
        missing = positions - {(d.partition, d.offset) for d in letters}
        for partition, offset in sorted(missing):
            err_console.print(f"[yellow]no dead letter at {partition}:{offset}[/yellow]")
    for d in truncated:
        err_console.print(
            f"[yellow]skipping {d.position}: a truncated copy "
            f"({d.headers.get('original_size', '?')} bytes originally)[/yellow]"
        )
    _warn_if_cut(letters, limit)
    if dry_run:
        for d in chosen:
            console.print(Text(f"would replay {d.position} (original {d.original}): {d.reason}"))
        console.print(f"dry run: would replay {len(chosen)} message(s) to {topic}")
        return
    if not chosen:
        console.print(f"replayed 0 message(s) to {topic}")
        return
    body = call(
        "POST",
        "/api/admin/dlq/replay",
        url=url,
        token=token,
        json={
            "topic": topic,
            "messages": [{"partition": d.partition, "offset": d.offset} for d in chosen],
        },
    ).json()
    console.print(f"replayed {body['replayed']} message(s) to {topic}")
