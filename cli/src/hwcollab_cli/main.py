"""The operator CLI ``hwcollab``: each command group lives in its own module."""

from __future__ import annotations

import typer

from hwcollab_cli import (
    bounces,
    demo,
    dkim,
    dlq,
    employers,
    fanout,
    openings,
    stack,
    suppression,
)

app = typer.Typer(help="Operate HWcollab Opportunities.", no_args_is_help=True)
app.add_typer(stack.app, name="stack")
app.add_typer(demo.app, name="demo")
app.add_typer(employers.app, name="employers")
app.add_typer(openings.app, name="openings")
app.add_typer(dlq.app, name="dlq")
app.add_typer(suppression.app, name="suppression")
app.add_typer(bounces.app, name="bounces")
app.add_typer(dkim.app, name="dkim")
app.command("fanout")(fanout.fanout)

if __name__ == "__main__":
    app()
