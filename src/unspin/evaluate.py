"""Evaluate a tagger on PTC articles: SI, TC and joint scores, decoding tuned on cached outputs.

Pure numpy: works for the torch model during training and for the shipped ONNX model.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unspin.errors import ModelError
from unspin.tagger import ArticleOutputs, Tagger
from unspin.techniques import TECHNIQUES

__all__ = [
    "LEXICAL_WEIGHTS",
    "READER_WEIGHTS",
    "Evaluation",
    "evaluate",
    "tc_f1",
    "tc_predict",
    "tc_rows",
    "tune",
    "tune_tc",
    "fit_platt",
    "reliability",
    "val_scores",
]

Gold = dict[str, list[tuple[int, int, str]]]


@dataclass
class Evaluation:
    si_f1: float
    si_p: float
    si_r: float
    tc_f1: float
    joint_f1: float
    joint_p: float
    joint_r: float
    per_technique: dict[str, tuple[float, float, float]]
    tc_per_technique: dict[str, tuple[float, float, float]]

    def line(self) -> str:
        return (
            f"SI F1 {self.si_f1:.4f} (P {self.si_p:.3f} R {self.si_r:.3f})  TC F1 {self.tc_f1:.4f}"
            f"  joint F1 {self.joint_f1:.4f} (P {self.joint_p:.3f} R {self.joint_r:.3f})"
        )


def _labels(rows: Iterable[tuple[str, int, int, str | None]]) -> list[Any]:
    from unspin.corpus import Label

    return [Label(article_id=a, start=s, end=e, technique=t) for a, s, e, t in rows]


def tc_predict(tagger: Tagger, out: ArticleOutputs, spans: list[tuple[int, int]]) -> list[str]:
    """Label template rows; identical spans listed k times get the k best distinct labels."""
    uniq = sorted(set(spans))
    probs = tagger.tc_probs(out, uniq)
    ranked = {sp: list(np.argsort(-row)) for sp, row in zip(uniq, probs, strict=True)}
    used: dict[tuple[int, int], int] = defaultdict(int)
    labels = []
    for sp in spans:
        labels.append(TECHNIQUES[ranked[sp][used[sp] % len(TECHNIQUES)]])
        used[sp] += 1
    return labels


def evaluate(
    tagger: Tagger, outputs: dict[str, ArticleOutputs], gold: Gold, *, tc: bool = True
) -> Evaluation:
    from unspin.scorer import score

    gold_si = _labels((a, s, e, None) for a, rows in gold.items() for s, e, _ in rows)
    gold_j = _labels((a, s, e, t) for a, rows in gold.items() for s, e, t in rows)
    pred_si, pred_j, pred_tc = [], [], []
    for aid, out in outputs.items():
        for sp in tagger._si_spans(out, None):
            pred_si.append((aid, sp.start, sp.end, None))
        for sp in tagger._joint_spans(out, None):
            pred_j.append((aid, sp.start, sp.end, sp.technique))
        if tc:
            spans = [(s, e) for s, e, _ in gold.get(aid, [])]
            for (s, e), t in zip(spans, tc_predict(tagger, out, spans), strict=True):
                pred_tc.append((aid, s, e, t))
    si = score("si", gold_si, _labels(pred_si))
    joint = score("joint", gold_j, _labels(pred_j))
    tcs = score("tc", gold_j, _labels(pred_tc)) if tc else None
    return Evaluation(
        si_f1=si.f1,
        si_p=si.precision,
        si_r=si.recall,
        tc_f1=tcs.f1 if tcs else float("nan"),
        joint_f1=joint.f1,
        joint_p=joint.precision,
        joint_r=joint.recall,
        per_technique=dict(joint.per_technique or {}),
        tc_per_technique=dict(tcs.per_technique or {}) if tcs else {},
    )


SI_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
MAX_GAPS = (0, 1, 2)
EXTEND_RATIOS = (1.0, 0.8, 0.6)  # hysteresis: spans grow over tokens above ratio x threshold
JOINT_THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
JOINT_HEAD_THRESHOLDS = (None, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)  # None: no head spans
# the lexical classifier's weight beside the span head (0: the head alone; unspin.lexical)
LEXICAL_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)
READER_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 50.0)


JOINT_TUNERS = ("own_cut", "si_cut")


def tune(
    tagger: Tagger,
    outputs: dict[str, ArticleOutputs],
    gold: Gold,
    *,
    joint_cut: bool | None = None,
    tc: bool = True,
) -> dict[str, Any]:
    """Grid-search the decoding settings on cached outputs; writes the best into tagger.config.

    SI's threshold, gap and hysteresis (``extend_ratio``) maximise SI F1. The joint task
    decodes its spans with its own threshold and gap (``joint_si_threshold``,
    ``joint_max_gap``), searched with the labelling settings to maximise joint F1: the SI-best
    cut was up to 2 joint points from the joint-best one (``small`` of session 3 on val).
    Last, ``joint_head_threshold`` adds joint spans read off the technique heads
    (``Tagger._head_spans``), searched for joint F1 with everything else fixed. The TC task's
    Repetition rule is tuned for TC F1 (``tune_tc``).
    ``joint_cut=False``: joint reuses SI's threshold and gap (not its hysteresis, which the
    joint task never uses) and adds no technique-head spans (the tuner
    before session 3; benchmarks/tuning_cv.py compares the two out of sample). Unset, the
    model's ``joint_tuner`` decides: ``"own_cut"`` (the default) or ``"si_cut"``. ``tc=False``
    leaves the TC task's settings (``tune_tc``) as they are."""
    c = tagger.config
    c.pop("joint_raw_threshold", None)  # calibrate_on's, for a flat calibration: refitted after
    if joint_cut is None:
        tuner = c.get("joint_tuner", "own_cut")
        if tuner not in JOINT_TUNERS:
            raise ModelError(
                f"joint_tuner = {tuner!r} in the model's config.json must be one of "
                f"{', '.join(JOINT_TUNERS)}"
            )
        joint_cut = tuner == "own_cut"
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    for ratio in EXTEND_RATIOS:
        for thr in SI_THRESHOLDS:
            for gap in MAX_GAPS:
                c.update(si_threshold=thr, max_gap=gap, extend_ratio=ratio)
                ev = evaluate(tagger, outputs, gold, tc=False)
                if ev.si_f1 > best[0]:
                    best = (ev.si_f1, {"si_threshold": thr, "max_gap": gap, "extend_ratio": ratio})
    c.update(best[1])
    joint = {"joint_si_threshold": c["si_threshold"], "joint_max_gap": c["max_gap"]}
    c.update(joint)

    def search(grid: dict[str, tuple[Any, ...]]) -> None:
        """Coordinate step: the best joint F1 over ``grid``, the other settings as they are."""
        jbest: tuple[float, dict[str, Any]] = (-1.0, {})
        keys = list(grid)
        for values in itertools.product(*grid.values()):
            c.update(zip(keys, values, strict=True))
            ev = evaluate(tagger, outputs, gold, tc=False)
            if ev.joint_f1 > jbest[0] + 1e-12:
                jbest = (ev.joint_f1, dict(zip(keys, values, strict=True)))
        c.update(jbest[1])

    labelling = {
        "second_label_ratio": (0.3, 0.5, 0.7, 1.01),
        "repetition_floor": (0.0, 0.3, 0.6),
        "joint_threshold": JOINT_THRESHOLDS,
    }
    c["joint_head_threshold"] = None  # the SI cut's spans only, until the last step
    search(labelling)
    if not joint_cut:
        keys = (*best[1], "joint_si_threshold", "joint_max_gap", *labelling, "joint_head_threshold")
        return {k: c[k] for k in keys} | (tune_tc(tagger, outputs, gold) if tc else {})
    search(
        {
            "joint_si_threshold": SI_THRESHOLDS,
            "joint_max_gap": MAX_GAPS,
            "joint_threshold": JOINT_THRESHOLDS,
        }
    )
    search(labelling)
    # spans read off the technique heads, added where the SI cut found none of that technique
    search({"joint_head_threshold": JOINT_HEAD_THRESHOLDS})
    keys = (*best[1], "joint_si_threshold", "joint_max_gap", *labelling, "joint_head_threshold")
    return {k: c[k] for k in keys} | (tune_tc(tagger, outputs, gold) if tc else {})


TC_REPETITION = ((1.0, 2), *itertools.product((2.0, 5.0, 20.0, 100.0), (2, 3, 4)))


def tc_rows(
    tagger: Tagger, outputs: dict[str, ArticleOutputs], gold: Gold
) -> list[tuple[str, int, int, str]]:
    """The TC task's predictions for the gold spans (the task's template) of these articles."""
    pred = []
    for aid, out in outputs.items():
        spans = [(s, e) for s, e, _ in gold.get(aid, [])]
        labels = tc_predict(tagger, out, spans)
        pred += [(aid, s, e, t) for (s, e), t in zip(spans, labels, strict=True)]
    return pred


def tc_f1(tagger: Tagger, outputs: dict[str, ArticleOutputs], gold: Gold) -> float:
    """TC micro-F1 on the gold spans of these articles."""
    from unspin.scorer import score

    gold_j = _labels((a, s, e, t) for a in outputs for s, e, t in gold.get(a, []))
    return score("tc", gold_j, _labels(tc_rows(tagger, outputs, gold))).f1


def tune_tc(
    tagger: Tagger, outputs: dict[str, ArticleOutputs], gold: Gold
) -> dict[str, float | int]:
    """The TC task's settings (``Tagger.tc_probs``): the lexical classifier's weight (when the
    model, or a member of an ensemble, has one; an ensemble passes it to every member), the
    span reader's weight (when the install has one) and the Repetition rule's factor and
    minimum count, with the best TC F1 (ties go to the earlier, milder setting); written into
    tagger.config."""
    best: tuple[float, dict[str, float | int]] = (-1.0, {})
    lexical = tagger.lexical is not None or any(m.lexical is not None for m in tagger.members)
    weights = LEXICAL_WEIGHTS if lexical else (0.0,)
    reader = tagger.reader is not None  # an ensemble's own, which it gives its members
    for weight, read, (factor, least) in itertools.product(
        weights, READER_WEIGHTS if reader else (0.0,), TC_REPETITION
    ):
        setting = {
            "tc_lexical_weight": weight,
            "tc_reader_weight": read,
            "tc_repetition_factor": factor,
            "tc_repetition_min_count": least,
        }
        tagger.config.update(setting)
        f1 = tc_f1(tagger, outputs, gold)
        if f1 > best[0] + 1e-12:
            best = (f1, setting)
    tagger.config.update(best[1])
    return best[1] | fit_tc_temperature(tagger, outputs, gold)


TC_TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def fit_tc_temperature(
    tagger: Tagger, outputs: dict[str, ArticleOutputs], gold: Gold
) -> dict[str, float]:
    """``tc_calibration_temperature``: the softening of the TC probabilities with the lowest
    log-loss of the gold rows' techniques (the ranking, hence TC F1, does not change)."""
    tagger.config["tc_calibration_temperature"] = 1.0
    logp, rows = [], []
    for aid, out in outputs.items():
        spans = [(s, e) for s, e, _ in gold.get(aid, [])]
        if spans:
            probs = tagger.tc_probs(out, spans)
            logp.append(np.log(np.maximum(probs, 1e-12)))
            rows += [TECHNIQUES.index(t) for *_, t in gold[aid]]
    if not rows:
        return {"tc_calibration_temperature": 1.0}
    lp, y = np.concatenate(logp), np.asarray(rows)

    def loss(t: float) -> float:
        z = lp / t
        z = z - z.max(axis=1, keepdims=True)
        norm = np.log(np.exp(z).sum(axis=1))
        return float((norm - z[np.arange(len(y)), y]).mean())

    best = min(TC_TEMPERATURES, key=loss)
    tagger.config["tc_calibration_temperature"] = best
    return {"tc_calibration_temperature": best}


def fit_platt(raw: np.ndarray, y: np.ndarray, iters: int = 50) -> list[float]:
    """Logistic regression of y on logit(raw) (Newton's method); returns [a, b]. The map never
    falls as the raw score rises: a negative slope (spans ranked backwards, by chance on a small
    set) becomes a = 0, and every span gets the share that is correct."""
    p = np.clip(raw, 1e-6, 1 - 1e-6)
    x = np.stack([np.log(p / (1 - p)), np.ones_like(p)], axis=1)
    w = np.array([1.0, 0.0])
    for _ in range(iters):
        q = 1 / (1 + np.exp(-x @ w))
        g = x.T @ (q - y)
        h = (x * (q * (1 - q))[:, None]).T @ x + 1e-6 * np.eye(2)
        w -= np.linalg.solve(h, g)
    if w[0] < 0:
        share = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        return [0.0, float(np.log(share / (1 - share)))]
    return [float(w[0]), float(w[1])]


def reliability(scores: np.ndarray, y: np.ndarray, bins: int = 5) -> tuple[list[str], float]:
    """Rows 'lo-hi  n  mean score  share correct' and the expected calibration error."""
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (scores >= lo) & (scores < hi if hi < 1 else scores <= hi)
        if m.sum() == 0:
            continue
        conf, acc = float(scores[m].mean()), float(y[m].mean())
        ece += m.sum() / len(scores) * abs(conf - acc)
        rows.append(f"{lo:.1f}-{hi:.1f}  {int(m.sum()):5d}  {conf:.3f}  {acc:.3f}")
    return rows, float(ece)


def span_correct(
    spans: list[tuple[str, int, int, str | None]], gold: Gold, *, joint: bool
) -> np.ndarray:
    """1 where at least half of a predicted span lies inside gold (same technique if joint)."""
    y = []
    for aid, s, e, t in spans:
        cover = np.zeros(e - s, dtype=bool)
        for gs, ge, gt in gold.get(aid, []):
            if joint and gt != t:
                continue
            lo, hi = max(s, gs), min(e, ge)
            if hi > lo:
                cover[lo - s : hi - s] = True
        y.append(float(cover.mean() >= 0.5))
    return np.asarray(y)


def val_scores(ev: Evaluation) -> dict[str, float]:
    """The val scores recorded in a model's config.json (`unspin models` shows them)."""
    keys = ("si_f1", "si_p", "si_r", "tc_f1", "joint_f1", "joint_p", "joint_r")
    return {k: round(float(getattr(ev, k)), 4) for k in keys}
