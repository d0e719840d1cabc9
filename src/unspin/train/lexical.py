"""Fit the lexical span classifier (``unspin.lexical``) on the training split's gold spans.

A multinomial logistic regression with class-balanced weights and an L2 penalty (scikit-learn's
objective: ``sum_i w_i * loss_i + |W|^2 / (2 C)``, intercept unpenalised), fitted by full-batch
L-BFGS in torch from zeros on one thread (the sums always in the same order), so the same
data gives the same weights run after run; other CPUs or torch builds may differ in the last
bits. About 6 minutes for PTC train's 5,518 spans (1,000 iterations).
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from unspin.lexical import GROUPS, N_DENSE, LexicalClassifier, grams
from unspin.techniques import TECHNIQUES

__all__ = ["MIN_DF", "fit_lexical"]

# a term enters the vocabulary when this many training spans use it
MIN_DF = {"w": 1, "c": 2, "l": 2, "r": 2}


def fit_lexical(
    texts: Mapping[str, str],
    gold: Mapping[str, Sequence[tuple[int, int, str]]],
    *,
    c: float = 10.0,
    max_iter: int = 1000,
) -> LexicalClassifier:
    """One example per gold row (a span with two techniques gives two examples). Runs
    ``max_iter`` L-BFGS iterations unless the gradient vanishes first (a fixed budget: the same
    weights every time); logs them and the largest gradient left, and warns when that is
    still large."""
    if not (c > 0 and np.isfinite(c)):
        raise ValueError(f"lexical_c must be a positive number, not {c}")
    rows = [(aid, s, e, t) for aid in sorted(gold) for s, e, t in gold[aid]]
    if not rows:
        raise ValueError("no gold spans to fit the lexical classifier on")
    assert set(GROUPS) == set(MIN_DF)
    term_lists = [grams(texts[aid], s, e) for aid, s, e, _ in rows]
    df = document_frequencies(term_lists)
    vocab = sorted(name for name, n in df.items() if n >= MIN_DF[name.split("|", 1)[0]])
    n = len(rows)
    idf = np.array([np.log((1 + n) / (1 + df[v])) + 1.0 for v in vocab], np.float64)
    k = len(TECHNIQUES)
    clf = LexicalClassifier(
        vocab, idf, np.zeros((len(vocab) + N_DENSE, k), np.float32), np.zeros(k, np.float32)
    )
    crow, ccol, cval = [], [], []
    for i, (aid, s, e, _) in enumerate(rows):
        (cols, vals) = clf.rows(texts[aid], [(s, e)])[0]
        crow += [i] * len(cols)
        ccol += cols.tolist()
        cval += vals.tolist()
    x = torch.sparse_coo_tensor(
        torch.tensor([crow, ccol]),
        torch.tensor(cval, dtype=torch.float64),
        (n, clf.coef.shape[0]),
        check_invariants=True,
    ).coalesce()
    y = torch.tensor([TECHNIQUES.index(t) for *_, t in rows])
    counts = torch.bincount(y, minlength=k).double()
    present = int((counts > 0).sum())
    sample_w = (n / (present * counts.clamp(min=1)))[y]
    w = torch.zeros(clf.coef.shape[0], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-10,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = torch.sparse.mm(x, w) + b
        nll = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        loss = (sample_w * nll).sum() + (w * w).sum() / (2 * c)
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # sums in one order: the same weights on any machine
    try:
        opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    steps = int(opt.state[opt.param_groups[0]["params"][0]]["n_iter"])
    grad = max(float(w.grad.abs().max()), float(b.grad.abs().max()))  # type: ignore[union-attr]
    msg = f"lexical classifier: {len(vocab)} terms, {steps} L-BFGS iterations, |grad| {grad:.1e}"
    # the objective sums over the spans, so a gradient of 0.01 is a tiny one per span; PTC
    # train's fit ends its 1000 iterations at 0.009 (runs/retune9.log)
    if grad > 0.05:
        warnings.warn(f"{msg}: not converged, raise max_iter", stacklevel=2)
    else:
        print(msg, file=sys.stderr, flush=True)
    clf.coef = w.detach().numpy().astype(np.float32)
    clf.bias = b.detach().numpy().astype(np.float32)
    return clf


def document_frequencies(docs: Iterable[dict[str, list[str]]]) -> Counter[str]:
    """How many spans use each ``"<group>|<term>"``."""
    df: Counter[str] = Counter()
    for g in docs:
        df.update({f"{group}|{t}" for group, terms in g.items() for t in terms})
    return df
