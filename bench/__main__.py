"""Run every registered benchmark: ``python -m bench [--quick] [--only NAME] [--out DIR]``.

A full run writes ``bench/results/<name>.json``, plots and ``bench/RESULTS.md``; ``--quick`` runs
small sizes for seconds and writes to a temporary directory, never over committed results.
Benchmarks in ``QUICK_ON_REQUEST`` run quick only when named with ``--only``: starting their
stack alone takes longer than the quick run (part of ``make test``) can spend on them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench import e2e, fanout, ingest, load, match, mongo, send
from bench.harness import BENCH_DIR, REGISTRY, Output

# importing a benchmark module registers it
MODULES = (e2e, fanout, ingest, load, match, mongo, send)
QUICK_ON_REQUEST = frozenset({"load"})

app = typer.Typer(add_completion=False)


@app.command()
def main(
    quick: Annotated[
        bool, typer.Option(help="small sizes, seconds of runtime, temporary output")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option(help="run only this benchmark (repeatable)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="output directory (default: bench/, or a temp dir with --quick)"),
    ] = None,
) -> None:
    console = Console()
    names = only or sorted(name for name in REGISTRY if not (quick and name in QUICK_ON_REQUEST))
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s) {unknown}; known: {sorted(REGISTRY)}")
    if quick and not only:
        for name in sorted(QUICK_ON_REQUEST & REGISTRY.keys()):
            console.print(f"{name}: skipped in the quick run; `--quick --only {name}` runs it")
    root = out or (Path(tempfile.mkdtemp(prefix="bench-quick-")) if quick else BENCH_DIR)
    for name in names:
        console.rule(f"{name}{' (quick)' if quick else ''}")
        REGISTRY[name](quick=quick, out=Output(root))
    console.print(f"results in {root / 'results'}, table in {root / 'RESULTS.md'}")


if __name__ == "__main__":
    app()
