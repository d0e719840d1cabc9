"""Batch prediction in the PTC label format (the SemEval-2020 Task 11 contract)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from unspin.corpus import Label, read_articles, read_labels, write_labels
from unspin.errors import InputError
from unspin.evaluate import tc_predict
from unspin.tagger import Tagger

__all__ = ["predict_folder"]

TASKS = ("si", "tc", "joint")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def predict_folder(
    articles_dir: str | Path,
    task: str,
    output: str | Path,
    *,
    template: str | Path | None = None,
    model: str = "default",
    threshold: float | None = None,
) -> int:
    """Label every article in ``articles_dir``; returns the number of rows written."""
    task = task.strip().lower()
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
    if task == "tc" and template is None:
        raise InputError("--task tc needs --template FILE (the spans to label, technique '?')")
    if task != "tc" and template is not None:
        raise InputError("--template only applies to --task tc")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must be between 0 and 1, got {threshold:g}")
    texts = read_articles(articles_dir)
    rows: list[Label] = []
    if task == "tc":
        assert template is not None
        todo = read_labels(template, task="tc", articles=texts, allow_unknown_technique=True)
        by_article: dict[str, list[int]] = defaultdict(list)
        for i, lab in enumerate(todo):
            by_article[lab.article_id].append(i)
        filled: list[str | None] = [None] * len(todo)
        tagger = Tagger(model)
        with _progress() as bar:
            job = bar.add_task("classifying", total=len(by_article))
            for aid, idx in by_article.items():
                out = tagger.outputs(texts[aid])
                spans = [(todo[i].start, todo[i].end) for i in idx]
                for i, tech in zip(idx, tc_predict(tagger, out, spans), strict=True):
                    filled[i] = tech
                bar.advance(job)
        rows = [
            Label(lab.article_id, lab.start, lab.end, t)
            for lab, t in zip(todo, filled, strict=True)
        ]
    else:
        tagger = Tagger(model)
        with _progress() as bar:
            job = bar.add_task(f"predicting ({tagger.name})", total=len(texts))
            for aid, text in texts.items():
                if task == "si":
                    spans = tagger.predict_si(text, threshold=threshold)
                else:
                    spans = tagger.predict(text, threshold=threshold)
                rows += [Label(aid, s.start, s.end, s.technique) for s in spans]
                bar.advance(job)
    write_labels(output, rows, task)  # type: ignore[arg-type]
    return len(rows)
