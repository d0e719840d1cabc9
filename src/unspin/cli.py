"""Command-line interface: a thin layer over the public API.

Every command parses its input, calls the API, formats the output. Any
:class:`~unspin.errors.UnspinError` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from unspin.errors import UnspinError

app = typer.Typer(
    name="unspin",
    help="Find, label and explain propaganda techniques in news articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain click help: no type column ("--no-color <bool>")
)


def _version(value: bool) -> None:
    if value:
        from unspin import __version__

        typer.echo(f"unspin {__version__}")
        raise typer.Exit()


# the --model option of analyze and predict
ModelName = Annotated[
    str,
    typer.Option(
        "--model",
        help="A model from `unspin models` (default: the one marked default there).",
        metavar="NAME",
        show_default=False,  # "[default: default]" says nothing
    ),
]


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Find, label and explain propaganda techniques in news articles."""


def _fail(err: UnspinError) -> None:
    typer.echo(f"Error: {err}", err=True)
    raise typer.Exit(code=1)


@app.command(short_help="Show how articles persuade: techniques, where, how sure.")
def analyze(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Articles: text or HTML files, http(s) URLs, or - for stdin.",
            metavar="PATH|URL|-",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="terminal, json, html or semeval. Default: terminal on a terminal, json when "
            "piped, or from the -o file's extension (.html, .json, .labels, .txt).",
            show_default=False,
            metavar="FORMAT",
        ),
    ] = None,
    output: Annotated[
        str | None,  # not Path: Path("./-") would read as "-" (standard output)
        typer.Option(
            "-o",
            "--output",
            help="Write the report to this file (atomically; '-': standard output).",
            metavar="FILE",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Keep labelled spans whose technique confidence is >= this (0-1), instead of "
            "the model's tuned cut: raise it for fewer, surer spans. Which stretches of text "
            "are candidates does not change, so lowering it adds few.",
            metavar="X",
        ),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours in terminal output (or NO_COLOR=1).")
    ] = False,
    model: ModelName = "default",
) -> None:
    """Show how articles try to persuade: techniques, where, how sure, aimed at whom.

    Examples:

    unspin analyze article.txt

    unspin analyze https://example.org/news -o report.html

    curl -s URL | unspin analyze - --format json
    """
    import os
    import shutil

    from unspin.analysis import Analyzer
    from unspin.errors import InputError
    from unspin.fileio import check_not_input, check_output, write_atomic
    from unspin.ingest import load
    from unspin.report import choose_format, render

    if output == "-":
        output = None  # standard output, as without -o
    try:
        tty = sys.stdout.isatty()
        if output is not None:
            check_output(output)  # before the articles are read and analysed
            check_not_input(output, list(inputs))
        fmt_name = choose_format(fmt, None if output is None else Path(output), tty)
        if inputs.count("-") > 1:
            raise InputError("stdin (-) can be read only once")
        if fmt_name == "semeval":
            from unspin.report.semeval import check_ids

            check_ids(inputs)  # before the articles are read and analysed
        docs = [load(source) for source in inputs]
        analyzer = Analyzer(model=model)
        analyses = [analyzer.analyze(d.text, d.title, threshold, source=d.source) for d in docs]
        color = output is None and tty and not no_color and not os.environ.get("NO_COLOR")
        width = min(100, shutil.get_terminal_size((80, 24)).columns) if tty else 80
        report = render(analyses, fmt_name, color=color, width=width)
        if output is not None:
            write_atomic(output, report)
        else:
            typer.echo(report, nl=False)
    except UnspinError as err:
        _fail(err)


@app.command(short_help="PTC-format labels for a folder of articles (si, joint, tc).")
def predict(
    articles: Annotated[
        Path, typer.Argument(help="Folder of article<ID>.txt files.", metavar="ARTICLES_DIR")
    ],
    task: Annotated[str, typer.Option("--task", help="si, joint or tc", metavar="TASK")] = "joint",
    output: Annotated[
        str,  # not Path: Path("./-") would read as "-" (standard output)
        typer.Option(
            "-o",
            "--output",
            help="Where to write the labels ('-': standard output).",
            metavar="FILE",
        ),
    ] = "predictions.labels",
    template: Annotated[
        Path | None,
        typer.Option("--template", help="TC only: rows to label (technique '?').", metavar="FILE"),
    ] = None,
    model: ModelName = "default",
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Keep spans with confidence >= this. SI confidences rank spans weakly: the "
            "default medium's run from about 0.3 to 0.7 on articles (a short text can give "
            "all spans one score), while small gives every SI span 0.48, so with small and "
            "--task si it keeps all spans or none (MODEL_CARD.md).",
            metavar="X",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Articles tagged side by side, each on its share of the CPU threads.",
            metavar="N",
        ),
    ] = 2,
) -> None:
    """Predict PTC-format labels (SemEval-2020 Task 11) for a folder of articles."""
    from unspin.predict import predict_folder

    try:
        n = predict_folder(
            articles,
            task,
            output,
            template=template,
            model=model,
            threshold=threshold,
            workers=workers,
        )
    except UnspinError as err:
        _fail(err)
        return
    where = "standard output" if output == "-" else output
    typer.echo(f"wrote {n} row{'s' if n != 1 else ''} to {where}", err=True)


@app.command(short_help="Score predictions against gold labels (SemEval-2020 Task 11).")
def score(
    task: Annotated[str, typer.Argument(help="si, tc or joint", metavar="TASK")],
    gold: Annotated[
        Path, typer.Argument(help="Gold labels: one file or a folder of files.", metavar="GOLD")
    ],
    pred: Annotated[
        Path, typer.Argument(help="Predicted labels: one file or a folder.", metavar="PRED")
    ],
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
        notes: list[str] = []
        result = score_files(task_name, gold, pred, notes)
    except UnspinError as err:
        _fail(err)
        return
    for note in notes:
        typer.echo(f"Warning: {note}", err=True)

    if as_json:
        typer.echo(json.dumps({"task": task_name, **result.to_dict()}))
        return

    table = Table(title=f"unspin score - task {task_name}")
    console = Console() if sys.stdout.isatty() else Console(width=120)  # piped: no "precis…"
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
    console.print(table)


@app.command()
def models() -> None:
    """List the shipped models with their validation scores and speed."""
    from rich.console import Console
    from rich.table import Table

    from unspin.reader import READER_DIR
    from unspin.registry import model_infos

    table = Table(title="shipped models (scores on PTC val, 37 articles)")
    for col in ("name", "encoder", "SI F1", "TC F1", "joint F1", "articles/s", "MiB", "default"):
        table.add_column(col, justify="left" if col in ("name", "encoder") else "right")
    infos = model_infos()
    for info in infos:
        val = info.get("val", {})
        speed = info.get("speed", {})

        def fmt(x: object) -> str:
            return f"{x:.3f}" if isinstance(x, float) else "-"

        table.add_row(
            info["name"],
            "average of " + " + ".join(info["members"])
            if info.get("members")
            else info.get("encoder", "?")
            + (f" ({info['layers']} layers)" if info.get("layers") else ""),
            fmt(val.get("si_f1")),
            fmt(val.get("tc_f1")),
            fmt(val.get("joint_f1")),
            f"{speed['articles_per_s']:.1f}" if "articles_per_s" in speed else "-",
            f"{info['size_mb']:.0f}",
            "yes" if info.get("default") else "",
        )
    console = Console()
    console.print(table)
    cpus = sorted({str(i["speed"]["cpu"]) for i in infos if i.get("speed", {}).get("cpu")})
    if cpus:  # int8 speed depends on the CPU: say which one the numbers come from
        console.print(
            f"articles/s: benchmarks/speed.py on 2 cores of {' / '.join(cpus)}; "
            "other CPUs differ (BENCHMARKS.md)."
        )
    if (READER_DIR / "model.onnx").is_file():  # the TC task's third opinion, shared by all
        try:
            reader = json.loads((READER_DIR / "config.json").read_text(encoding="utf-8"))
            tc = reader.get("val", {}).get("tc_f1") if isinstance(reader, dict) else None
        except (OSError, ValueError):  # a damaged file: `predict --task tc` will say so
            tc = None
        mb = sum(f.stat().st_size for f in READER_DIR.iterdir() if f.is_file()) / 2**20
        alone = f", TC F1 {tc:.3f} alone" if isinstance(tc, float) else ""
        console.print(
            f"The TC task (predict --task tc) also reads each span with the span reader "
            f"({mb:.0f} MiB, shared by all models{alone}); TC F1 above includes it."
        )


@app.command(short_help="Train a model from a config file (needs the train extra).")
def train(
    config: Annotated[
        Path, typer.Argument(help="A training config, e.g. configs/small.toml.", metavar="CONFIG")
    ],
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus",
            help="PTC folder (default $UNSPIN_PTC_DIR, else ../shared/data/ptc).",
            metavar="DIR",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder.", metavar="DIR")] = Path(
        "runs/model"
    ),
) -> None:
    """Train a model from a config (needs the train extra; the shipped recipes take hours on a
    2-core CPU, minutes on a GPU: MODEL_CARD.md lists the times)."""
    from unspin.corpus import find_corpus
    from unspin.errors import ModelError

    try:
        from unspin.train.config import load_config

        # a broken config fails now, not after torch and the corpus load
        task = load_config(config)["task"]
        try:
            from unspin.train.loop import train as run_training
        except ImportError as err:
            raise ModelError(
                f"training needs the [train] extra ({err.name} is missing): "
                "pip install 'unspin[train]' (from a checkout: pip install '.[train]')"
            ) from err
        folder = run_training(config, find_corpus(corpus), out)
    except UnspinError as err:
        _fail(err)
        return
    if task == "reader":
        typer.echo(f"span reader exported to {folder / 'reader'}")
    else:
        typer.echo(f"model exported to {folder / 'onnx'}")


def _click_exceptions() -> tuple[tuple[type[Any], ...], tuple[type[BaseException], ...]]:
    """click's ClickException and Abort; typer >= 0.2x raises those of its vendored click."""
    import importlib

    errors: list[type[Any]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(module.ClickException)
        aborts.append(getattr(module, "Abort", typer.Abort))
    return tuple(errors), tuple(aborts)


def main() -> None:
    """The ``unspin`` command. Every mistake, a usage error included, ends as one ``Error:``
    line on stderr and exit code 1 (click alone would print a usage block and exit 2)."""
    click_errors, abort = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except click_errors as err:
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            sys.exit(0)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        typer.echo(f"Error: {err.format_message()}{hint}", err=True)
        sys.exit(1)
    except abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    except UnspinError as err:  # raised outside a command body (e.g. at import of a backend)
        typer.echo(f"Error: {err}", err=True)
        sys.exit(1)
    except OSError as err:  # standard output full or gone (`> /dev/full`, a closed pipe)
        import errno
        import os

        try:  # nothing more goes to a stream that failed, not even at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        if err.errno != errno.EPIPE:  # a reader that stopped reading (`| head`) is no error
            full = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            what = (
                err.filename
                if err.filename is not None
                else "cannot write standard output"
                if err.errno in full
                else "input/output error"
            )
            typer.echo(f"Error: {what}: {err.strerror or err}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
