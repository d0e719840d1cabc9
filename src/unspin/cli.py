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
    import json

    from rich.console import Console
    from rich.table import Table

    from unspin.errors import InputError
    from unspin.scorer import TASKS, score_files

    try:
        task_name = task.strip().lower()
        if task_name not in TASKS:
            raise InputError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}.")
        result = score_files(task_name, gold, pred)
    except UnspinError as err:
        _fail(err)
        return

    if as_json:
        typer.echo(json.dumps({"task": task_name, **result.to_dict()}))
        return

    table = Table(title=f"unspin score - task {task_name}")
    table.add_column("", style="bold", no_wrap=True)
    for header in ("precision", "recall", "F1", "gold", "pred"):
        table.add_column(header, justify="right")
    table.add_row(
        "overall",
        f"{result.precision:.4f}",
        f"{result.recall:.4f}",
        f"{result.f1:.4f}",
        str(result.n_gold),
        str(result.n_pred),
        end_section=bool(result.per_technique),
    )
    support = result.per_technique_support or {}
    for name, (p, r, f) in (result.per_technique or {}).items():
        n_gold, n_pred = support.get(name, (0, 0))
        table.add_row(name, f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", str(n_gold), str(n_pred))
    Console().print(table)


def main() -> None:
    try:
        app()
    except UnspinError as err:  # raised outside a command body (e.g. at import of a backend)
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
