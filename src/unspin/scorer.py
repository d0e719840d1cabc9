"""The SemEval-2020 Task 11 / NLP4IF-2019 evaluation measures (stdlib only).

``si``
    Span identification. Per article, overlapping spans are merged (gold and predictions
    separately; spans that merely *touch*, ``a.end == b.start``, are NOT merged, as in the
    official scorer, which merges character sets only when they intersect). Then, summing
    over every (predicted span s, gold span t) pair of the same article::

        P = sum |s & t| / |s|  /  number of predicted spans
        R = sum |s & t| / |t|  /  number of gold spans

    and F1 is their harmonic mean.
``joint``
    Fragment-level classification (NLP4IF-2019 FLC measure): like ``si``, but spans are
    merged per (article, technique) and a pair only counts when the techniques match.
    Per-technique P/R/F1 use the same sums restricted to one technique.
``tc``
    Technique classification on a fixed span template: for each identical
    (article, start, end) the predicted and gold techniques are matched as multisets (the
    best match, so the order of rows for the same span does not matter)::

        P = matched / predicted rows,  R = matched / gold rows

    Every predicted span must be a gold (template) span; extra rows are an error, as in the
    official scorer. With a complete prediction P = R = F1 = accuracy (micro-F1).
"""

from __future__ import annotations

import bisect
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from unspin.corpus import TASKS, Label, Task, read_labels
from unspin.errors import CorpusError, InputError
from unspin.techniques import TECHNIQUE_INDEX

__all__ = ["Score", "score", "score_files", "coverage_notes", "merge_spans", "TASKS"]


@dataclass
class Score:
    """Result of :func:`score`.

    ``n_gold``/``n_pred`` are the denominators of recall/precision: the number of spans
    after merging for ``si``/``joint``, the number of rows for ``tc``.
    ``per_technique`` maps a technique to ``(precision, recall, f1)`` for ``tc`` and
    ``joint`` (techniques present in gold or predictions, in the canonical order), else
    ``None``; ``per_technique_support`` maps it to ``(n_gold, n_pred)``.
    """

    precision: float
    recall: float
    f1: float
    per_technique: dict[str, tuple[float, float, float]] | None
    n_gold: int
    n_pred: int
    per_technique_support: dict[str, tuple[int, int]] | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: ``precision``, ``recall``, ``f1``, ``n_gold``, ``n_pred`` and
        ``per_technique`` (technique -> {precision, recall, f1, n_gold, n_pred}) or null."""
        per_technique: dict[str, dict[str, float | int]] | None = None
        if self.per_technique is not None:
            support = self.per_technique_support or {}
            per_technique = {}
            for name, (p, r, f) in self.per_technique.items():
                n_gold, n_pred = support.get(name, (0, 0))
                per_technique[name] = {
                    "precision": p,
                    "recall": r,
                    "f1": f,
                    "n_gold": n_gold,
                    "n_pred": n_pred,
                }
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "n_gold": self.n_gold,
            "n_pred": self.n_pred,
            "per_technique": per_technique,
        }


def _prf(prec_num: float, n_pred: int, rec_num: float, n_gold: int) -> tuple[float, float, float]:
    precision = prec_num / n_pred if n_pred > 0 else 0.0
    recall = rec_num / n_gold if n_gold > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision > 0 and recall > 0 else 0.0
    return precision, recall, f1


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge spans sharing at least one character; touching spans stay apart.

    Equivalent to the official scorer's union of intersecting character sets.
    """
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _overlap_sums(pred: list[tuple[int, int]], gold: list[tuple[int, int]]) -> tuple[float, float]:
    """Sum |s&t|/|s| and |s&t|/|t| over all pairs; both lists merged (sorted, disjoint)."""
    prec_num = 0.0
    rec_num = 0.0
    gold_ends = [end for _, end in gold]
    for s_start, s_end in pred:
        # First gold span ending after s starts; gold ends are increasing after merging.
        i = bisect.bisect_right(gold_ends, s_start)
        while i < len(gold) and gold[i][0] < s_end:
            t_start, t_end = gold[i]
            inter = min(s_end, t_end) - max(s_start, t_start)
            if inter > 0:
                prec_num += inter / (s_end - s_start)
                rec_num += inter / (t_end - t_start)
            i += 1
    return prec_num, rec_num


def _check_labels(labels: list[Label], role: str, need_technique: bool) -> None:
    for label in labels:
        if label.start < 0 or label.start >= label.end:
            raise CorpusError(
                f"{role} label {label.article_id} {label.start}-{label.end}: a span needs "
                "0 <= start < end."
            )
        if need_technique and label.technique is None:
            raise CorpusError(
                f"{role} label {label.article_id} {label.start}-{label.end} has no technique "
                "('?'); every row must name a technique for this task."
            )
        if need_technique and label.technique not in TECHNIQUE_INDEX:
            raise CorpusError(
                f"{role} label {label.article_id} {label.start}-{label.end}: unknown "
                f"technique {label.technique!r}."
            )


def _technique_order(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=lambda n: TECHNIQUE_INDEX.get(n, len(TECHNIQUE_INDEX)))


def _score_spans(gold: list[Label], pred: list[Label], by_technique: bool) -> Score:
    def group(labels: list[Label]) -> dict[tuple[str, str | None], list[tuple[int, int]]]:
        spans: dict[tuple[str, str | None], list[tuple[int, int]]] = defaultdict(list)
        for label in labels:
            key = (label.article_id, label.technique if by_technique else None)
            spans[key].append((label.start, label.end))
        return {key: merge_spans(value) for key, value in spans.items()}

    gold_spans = group(gold)
    pred_spans = group(pred)
    prec_num: dict[str | None, float] = defaultdict(float)
    rec_num: dict[str | None, float] = defaultdict(float)
    n_gold: Counter[str | None] = Counter()
    n_pred: Counter[str | None] = Counter()
    for (_, technique), spans in gold_spans.items():
        n_gold[technique] += len(spans)
    for key, spans in pred_spans.items():
        technique = key[1]
        n_pred[technique] += len(spans)
        p, r = _overlap_sums(spans, gold_spans.get(key, []))
        prec_num[technique] += p
        rec_num[technique] += r

    precision, recall, f1 = _prf(
        sum(prec_num.values()), sum(n_pred.values()), sum(rec_num.values()), sum(n_gold.values())
    )
    per_technique = support = None
    if by_technique:
        per_technique, support = {}, {}
        for name in _technique_order(t for t in [*n_gold, *n_pred] if t is not None):
            per_technique[name] = _prf(prec_num[name], n_pred[name], rec_num[name], n_gold[name])
            support[name] = (n_gold[name], n_pred[name])
    return Score(
        precision,
        recall,
        f1,
        per_technique,
        sum(n_gold.values()),
        sum(n_pred.values()),
        support,
    )


def _score_tc(gold: list[Label], pred: list[Label]) -> Score:
    gold_by_span: dict[tuple[str, int, int], Counter[str]] = defaultdict(Counter)
    pred_by_span: dict[tuple[str, int, int], Counter[str]] = defaultdict(Counter)
    for label in gold:
        gold_by_span[(label.article_id, label.start, label.end)][label.technique or ""] += 1
    first: dict[tuple[str, int, int], Label] = {}  # the first row of a span, for its line
    for label in pred:
        key = (label.article_id, label.start, label.end)
        pred_by_span[key][label.technique or ""] += 1
        first.setdefault(key, label)
    for span, techniques in pred_by_span.items():
        n_rows = sum(techniques.values())
        n_template = sum(gold_by_span[span].values()) if span in gold_by_span else 0
        if n_rows > n_template:
            article_id, start, end = span
            problem = (
                "is not a span of the gold/template file"
                if n_template == 0
                else f"has {n_rows} predicted rows but only {n_template} in the gold"
            )
            raise InputError(
                f"{_at(first[span])}TC prediction for article {article_id}, span {start}-{end} "
                f"{problem}; TC predictions must label exactly the template spans, one row per "
                "template row."
            )

    matched: Counter[str] = Counter()
    for span, techniques in gold_by_span.items():
        matched.update(techniques & pred_by_span.get(span, Counter()))
    n_gold: Counter[str] = Counter(label.technique or "" for label in gold)
    n_pred: Counter[str] = Counter(label.technique or "" for label in pred)

    precision, recall, f1 = _prf(
        float(sum(matched.values())), len(pred), float(sum(matched.values())), len(gold)
    )
    per_technique: dict[str, tuple[float, float, float]] = {}
    support: dict[str, tuple[int, int]] = {}
    for name in _technique_order([*n_gold, *n_pred]):
        per_technique[name] = _prf(matched[name], n_pred[name], matched[name], n_gold[name])
        support[name] = (n_gold[name], n_pred[name])
    return Score(precision, recall, f1, per_technique, len(gold), len(pred), support)


def _at(label: Label) -> str:
    return f"{label.where}: " if label.where else ""


def score(task: Task | str, gold: list[Label], pred: list[Label]) -> Score:
    """Score ``pred`` against ``gold`` with the measure of ``task`` (si, tc or joint)."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}.")
    need_technique = task != "si"
    _check_labels(gold, "gold", need_technique)
    _check_labels(pred, "predicted", need_technique)
    if task == "tc":
        return _score_tc(gold, pred)
    return _score_spans(gold, pred, by_technique=task == "joint")


def score_files(
    task: Task | str,
    gold_path: str | os.PathLike[str],
    pred_path: str | os.PathLike[str],
    notes: list[str] | None = None,
) -> Score:
    """Read gold and predicted labels (a file or a folder of ``.labels`` files each) and
    :func:`score` them. ``notes``: a list to which :func:`coverage_notes` warnings are added."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}.")
    gold = read_labels(gold_path, task=task)  # type: ignore[arg-type]
    if not gold:
        raise InputError(
            f"{gold_path}: no gold labels, so there is nothing to score against; "
            "check that GOLD comes before PRED"
        )
    pred = read_labels(pred_path, task=task)  # type: ignore[arg-type]
    if notes is not None:
        # a gold folder names its articles, those without spans included (PTC has 14)
        named = {
            m.group(1)
            for f in (Path(gold_path).iterdir() if Path(gold_path).is_dir() else [])
            if (m := _LABELS_FILE.match(f.name))
        }
        notes += coverage_notes(gold, pred, tc=task == "tc", known=named)
    return score(task, gold, pred)


_LABELS_FILE = re.compile(r"^article([^.\s]+)\.")


def coverage_notes(
    gold: list[Label], pred: list[Label], *, tc: bool = False, known: Iterable[str] = ()
) -> list[str]:
    """Warnings for article ids that look mismatched: predicted ids absent from the gold, and
    predictions for under half of the gold articles (``tc``: template rows left unlabelled).
    ``known``: article ids the gold has without rows (a gold folder's empty files). Unknown
    ids are only reported when over a quarter of the predicted articles have one: an article
    without gold spans is absent from a one-file gold, so a few are expected.
    The scores stay the task's (such rows count as false positives, such articles as missed);
    these only say why they may be low."""
    notes = []
    gold_ids = {g.article_id for g in gold}
    pred_ids = {p.article_id for p in pred}
    strange = sorted(pred_ids - gold_ids - set(known))
    if strange and len(strange) > len(pred_ids) / 4:
        shown = ", ".join(repr(a) for a in strange[:3]) + (", ..." if len(strange) > 3 else "")
        notes.append(
            f"{len(strange)} predicted article id(s) are not in the gold ({shown}): their rows "
            "count as false positives; a PTC id is the ID of article<ID>.txt"
        )
    covered = len(gold_ids & pred_ids)
    if tc:
        left = Counter((g.article_id, g.start, g.end) for g in gold)
        left.subtract((p.article_id, p.start, p.end) for p in pred)
        missing = [g for g in gold if left[(g.article_id, g.start, g.end)] > 0]
        if missing:
            m = missing[0]
            notes.append(
                f"the TC predictions label {len(pred)} of the {len(gold)} template rows: "
                f"{sum(n for n in left.values() if n > 0)} gold row(s) have no prediction and "
                f"count as missed, the first for article {m.article_id}, span "
                f"{m.start}-{m.end} ({m.where or 'gold'}); `unspin predict --task tc "
                "--template GOLD` labels every row"
            )
        return notes
    if not pred and gold:
        notes.append(
            "the predictions hold no rows: every gold span counts as missed; if that is not "
            "what the model found, check the file (a wrong path or an unfinished run)"
        )
    if pred and covered < len(gold_ids) / 2:
        notes.append(
            f"the predictions cover {covered} of the {len(gold_ids)} gold articles: the others' "
            "gold spans count as missed; to score a subset, give a gold file with only its "
            "articles"
        )
    return notes
