"""Command-line interface: a thin layer over the public API.

Every command parses its input, calls the API, formats the output. Any
:class:`~unspin.errors.UnspinError` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from unspin.errors import UnspinError

app = typer.Typer(
    name="unspin",
    help="Find, label and explain propaganda techniques in news articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(err: UnspinError) -> None:
    typer.echo(f"Error: {err}", err=True)
    raise typer.Exit(code=1)


@app.command()
def score(
    task: Annotated[str, typer.Argument(help="si, tc or joint")],
    gold: Annotated[Path, typer.Argument(help="Gold labels: one file or a folder of files.")],
    pred: Annotated[Path, typer.Argument(help="Predicted labels: one file or a folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score predictions against gold labels with the SemEval-2020 Task 11 measures."""
    raise NotImplementedError


def main() -> None:
    try:
        app()
    except UnspinError as err:  # raised outside a command body (e.g. at import of a backend)
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
