"""Batch prediction in the PTC label format (the SemEval-2020 Task 11 contract)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from unspin.checks import check_count, check_threshold
from unspin.corpus import Label, read_articles, read_labels, write_labels
from unspin.errors import InputError
from unspin.evaluate import tc_predict
from unspin.fileio import check_not_input, check_output
from unspin.ingest import MAX_BYTES
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
    workers: int = 1,
) -> int:
    """Label every article in ``articles_dir``; returns the number of rows written.
    ``workers``: articles tagged side by side (see ``Tagger.predict_many``)."""
    task = task.strip().lower()
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}")
    if task == "tc" and template is None:
        raise InputError("--task tc needs --template FILE (the spans to label, technique '?')")
    if task != "tc" and template is not None:
        raise InputError("--template only applies to --task tc")
    if task == "tc" and threshold is not None:
        raise InputError("--threshold does not apply to --task tc (every template row is labelled)")
    check_threshold(threshold)
    check_count("--workers", workers)
    check_output(output)  # before the model runs, not after
    # the size `unspin analyze` reads (ingest.MAX_BYTES): 2 MiB is about 350,000 words, for
    # which the tagger holds about 1 GB of window states; PTC articles are under 100 KB
    texts = read_articles(articles_dir, max_bytes=MAX_BYTES)
    inputs: list[str | Path] = [Path(articles_dir) / f"article{aid}.txt" for aid in texts]
    check_not_input(output, [*inputs, *([template] if template is not None else [])])
    rows: list[Label] = []
    if task == "tc":
        assert template is not None
        todo = read_labels(template, task="tc", articles=texts, allow_unknown_technique=True)
        if not todo:
            raise InputError(f"{template}: the template has no rows to label")
        named = [lab for lab in todo if lab.technique not in (None, "?")]
        if named:  # a gold file passed by mistake? its labels are not used
            Console(stderr=True).print(
                f"note: {len(named)} of {len(todo)} template rows already name a technique "
                f"(first: {named[0].technique}); every row gets the model's label, as if it "
                "were '?'",
                highlight=False,
                markup=False,
            )
        by_article: dict[str, list[int]] = defaultdict(list)
        for i, lab in enumerate(todo):
            by_article[lab.article_id].append(i)
        filled: list[str | None] = [None] * len(todo)
        # never more workers than articles: a lone article gets every thread
        tagger = Tagger(model, workers=min(workers, len(by_article)))
        for t in (tagger, *tagger.members):  # a missing or damaged lexical.npz: say so now,
            _ = t.lexical  # not under a progress bar that has started
        if tagger.config.get("tc_reader_weight"):  # the same for the span reader
            _ = tagger.reader

        def label(item: tuple[str, list[int]]) -> list[str]:
            aid, idx = item
            spans = [(todo[i].start, todo[i].end) for i in idx]
            return tc_predict(tagger, tagger.outputs(texts[aid]), spans)

        with _progress() as bar:
            job = bar.add_task("classifying", total=len(by_article))
            items = list(by_article.items())
            for (_, idx), techs in zip(items, tagger.map(label, items), strict=True):
                for i, tech in zip(idx, techs, strict=True):
                    filled[i] = tech
                bar.advance(job)
        rows = [
            Label(lab.article_id, lab.start, lab.end, t)
            for lab, t in zip(todo, filled, strict=True)
        ]
    else:
        tagger = Tagger(model, workers=max(1, min(workers, len(texts))))
        with _progress() as bar:
            job = bar.add_task(f"predicting ({tagger.name})", total=len(texts))
            found = tagger.predict_many(texts.values(), threshold=threshold, task=task)
            for aid, spans in zip(texts, found, strict=True):
                rows += [Label(aid, s.start, s.end, s.technique) for s in spans]
                bar.advance(job)
    write_labels(output, rows, task)  # type: ignore[arg-type]
    return len(rows)
