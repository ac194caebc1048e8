"""``hwcollab dkim``: the key pair that signs the notifier's email, and its DNS record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hwcollab_common.dkim_keys import (
    KeyAlgorithm,
    generate_signing_key,
    load_signing_key,
    private_key_pem,
    public_key_record,
)

app = typer.Typer(help="DKIM keys: make a key pair, print the DNS record that publishes it.")

Selector = Annotated[
    str, typer.Option(help="The DKIM_SELECTOR the notifier will sign with.", show_default=True)
]
Domain = Annotated[
    str, typer.Option(help="The signing domain: MAIL_FROM's domain (or DKIM_DOMAIN).")
]


def _record_lines(*, selector: str, domain: str, record: str) -> str:
    # A TXT string holds at most 255 characters: longer records go as several quoted strings,
    # which DNS servers join.
    strings = " ".join(f'"{record[i : i + 250]}"' for i in range(0, len(record), 250))
    return f"{selector}._domainkey.{domain}. IN TXT {strings}"


@app.command("keygen")
def keygen(
    output: Annotated[
        Path,
        typer.Argument(help="Where to write the private key (PEM, mode 0600); must not exist."),
    ],
    domain: Domain,
    selector: Selector = "hwcollab1",
    algorithm: Annotated[
        str, typer.Option(help="rsa (2048 bits, verified everywhere) or ed25519 (RFC 8463).")
    ] = "rsa",
) -> None:
    """Write a new DKIM private key to OUTPUT and print the TXT record to publish."""
    if algorithm not in ("rsa", "ed25519"):
        raise typer.BadParameter("rsa or ed25519", param_hint="--algorithm")
    chosen: KeyAlgorithm = "ed25519" if algorithm == "ed25519" else "rsa"
    key = generate_signing_key(chosen)
    try:
        # O_EXCL: never overwrite a key that may already be published and in use.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.echo(f"{output} exists: choose another file (and a new selector)", err=True)
        raise typer.Exit(1) from None
    with os.fdopen(fd, "wb") as file:
        file.write(private_key_pem(key))
    typer.echo(f"private key written to {output} (mode 0600); keep it secret")
    typer.echo("publish this DNS record, then set DKIM_PRIVATE_KEY and DKIM_SELECTOR:")
    typer.echo(_record_lines(selector=selector, domain=domain, record=public_key_record(key)))


@app.command("record")
def record(
    key_file: Annotated[Path, typer.Argument(help="A DKIM private key (PEM).")],
    domain: Domain,
    selector: Selector = "hwcollab1",
) -> None:
    """Print the TXT record that publishes the public half of KEY_FILE."""
    key = load_signing_key(key_file.read_bytes())
    typer.echo(_record_lines(selector=selector, domain=domain, record=public_key_record(key)))
