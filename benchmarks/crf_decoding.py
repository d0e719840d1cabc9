"""Would a linear-chain CRF over the model's token outputs cut better SI spans than the tuned
threshold decoder? (The SemEval-2020 winners decoded boundaries with a CRF.)

    python benchmarks/crf_decoding.py [--model small] [--folds 2] [--repeats 3]

The network's outputs on val are computed once. A CRF (emissions = a linear map of the token's
log P(O/B/I) and its 14 technique probabilities, plus B/I/O transitions: 66 weights) is fitted
by likelihood on the gold BIO tags of the training folds; the O emission gets a bias chosen
for SI F1 on the training folds; Viterbi paths of the held-out fold become spans with the
shipped snapping and sentence cuts. Same folds as benchmarks/tuning_cv.py; its decoder's
cross-validated SI F1 is the number to beat. Needs torch (the [train] extra) for the fit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.decode import runs_to_spans
from unspin.errors import exit_on_error
from unspin.evaluate import _labels
from unspin.scorer import score
from unspin.tagger import ArticleOutputs, Tagger

O, B, I = 0, 1, 2  # noqa: E741


def features(out: ArticleOutputs) -> np.ndarray:
    logp = np.log(np.clip(out.si, 1e-6, 1.0))
    return np.concatenate([logp, out.tech], axis=1).astype(np.float32)


def gold_tags(out: ArticleOutputs, spans: list[tuple[int, int, str]]) -> np.ndarray:
    """B on the first token of each merged gold span, I on the rest, O elsewhere."""
    tags = np.zeros(len(out.enc.ids), dtype=np.int64)
    offsets = out.enc.offsets
    for s, e in sorted({(s, e) for s, e, _ in spans}):
        inside = np.nonzero((offsets[:, 1] > s) & (offsets[:, 0] < e))[0]
        if len(inside):
            first = inside[0]
            tags[inside] = np.where(tags[inside] == O, I, tags[inside])
            if tags[first - 1] == O or first == 0:
                tags[first] = B
    return tags


class CRF(torch.nn.Module):
    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.emit = torch.nn.Linear(n_feat, 3)
        with torch.no_grad():  # start as "emission = the model's own log-probabilities"
            self.emit.weight.zero_()
            self.emit.weight[:, :3] = torch.eye(3)
            self.emit.bias.zero_()
        self.trans = torch.nn.Parameter(torch.zeros(3, 3))
        self.start = torch.nn.Parameter(torch.zeros(3))

    def nll(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of a batch of chunks (b, t, f) / (b, t) / (b, t)."""
        em = self.emit(x)
        gold = em.gather(2, y[..., None])[..., 0]
        pair = self.trans[y[:, :-1], y[:, 1:]]
        score = self.start[y[:, 0]] + gold[:, 0] + ((pair + gold[:, 1:]) * mask[:, 1:]).sum(1)
        alpha = self.start + em[:, 0]
        for t in range(1, x.shape[1]):
            step = torch.logsumexp(alpha[:, :, None] + self.trans, dim=1) + em[:, t]
            alpha = torch.where(mask[:, t, None] > 0, step, alpha)
        return (torch.logsumexp(alpha, dim=1) - score).sum()

    def viterbi(self, x: np.ndarray, o_bias: float) -> np.ndarray:
        with torch.no_grad():
            em = self.emit(torch.from_numpy(x)).numpy().astype(np.float64)
            trans, start = self.trans.numpy(), self.start.numpy()
        em[:, O] += o_bias
        n = len(em)
        back = np.zeros((n, 3), dtype=np.int64)
        delta = start + em[0]
        for t in range(1, n):
            cand = delta[:, None] + trans
            back[t] = cand.argmax(0)
            delta = cand.max(0) + em[t]
        path = np.zeros(n, dtype=np.int64)
        path[-1] = int(delta.argmax())
        for t in range(n - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return path


def fit(xs: list[np.ndarray], ys: list[np.ndarray], chunk: int = 64) -> CRF:
    """Likelihood fit on chunks of `chunk` tokens (exact within a chunk), L2 on the weights."""
    crf = CRF(xs[0].shape[1])
    pieces = [
        (x[i : i + chunk], y[i : i + chunk])
        for x, y in zip(xs, ys, strict=True)
        for i in range(0, len(x), chunk)
    ]
    n, f = len(pieces), xs[0].shape[1]
    bx = torch.zeros(n, chunk, f)
    by = torch.zeros(n, chunk, dtype=torch.long)
    bm = torch.zeros(n, chunk)
    for k, (x, y) in enumerate(pieces):
        bx[k, : len(x)] = torch.from_numpy(x)
        by[k, : len(y)] = torch.from_numpy(y)
        bm[k, : len(y)] = 1.0
    total = float(bm.sum())
    opt = torch.optim.LBFGS(crf.parameters(), lr=0.5, max_iter=30, history_size=10)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = crf.nll(bx, by, bm) / total
        loss = loss + 1e-3 * sum((p**2).sum() for p in crf.parameters())
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    return crf


def spans_of(out: ArticleOutputs, path: np.ndarray, config: dict) -> list[tuple[int, int]]:
    inside = (path != O).astype(np.float32)
    begin = (path == B).astype(np.float32)
    cut = runs_to_spans(
        out.text,
        out.enc,
        inside,
        0.5,
        begin=begin,
        min_chars=config.get("min_chars", 3),
        sentences=bool(config.get("split_sentences", False)),
    )
    return [(s, e) for s, e, _ in cut]


def si_f1(preds: dict[str, list[tuple[int, int]]], gold: dict) -> float:
    g = _labels((a, s, e, None) for a in preds for s, e, _ in gold[a])
    p = _labels((a, s, e, None) for a, sps in preds.items() for s, e in sps)
    return score("si", g, p).f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    corpus = find_corpus(args.corpus)
    ids = load_split(corpus, "val")
    texts, gold = load_texts_and_gold(corpus, ids)
    tagger = Tagger(args.model, threads=2)
    outs = {a: tagger.outputs(texts[a]) for a in ids}
    xs = {a: features(outs[a]) for a in ids if len(outs[a].enc.ids)}
    ys = {a: gold_tags(outs[a], gold[a]) for a in xs}
    share = np.bincount(np.concatenate(list(ys.values())), minlength=3) / sum(map(len, ys.values()))
    print(f"val tokens: O {share[O]:.3f}  B {share[B]:.3f}  I {share[I]:.3f}")
    biases = np.linspace(-2.0, 2.0, 17)
    t0 = time.perf_counter()
    for name, train_ids in [("in-sample", ids)]:
        crf = fit([xs[a] for a in train_ids if a in xs], [ys[a] for a in train_ids if a in xs])
        best = max(
            biases,
            key=lambda b: si_f1(
                {a: spans_of(outs[a], crf.viterbi(xs[a], b), tagger.config) for a in xs}, gold
            ),
        )
        preds = {a: spans_of(outs[a], crf.viterbi(xs[a], best), tagger.config) for a in xs}
        print(f"CRF {name}: O bias {best:+.2f}  SI F1 {si_f1(preds, gold):.4f}", flush=True)
        w = crf.emit.weight.detach().numpy()[:, :3]
        print(f"  emission weights on log P(O/B/I) (identity at the start):\n{w.round(2)}")
        print(f"  transitions (rows: from O/B/I):\n{crf.trans.detach().numpy().round(2)}")
        identity = CRF(xs[ids[0]].shape[1])
        ident = max(
            si_f1(
                {a: spans_of(outs[a], identity.viterbi(xs[a], b), tagger.config) for a in xs}, gold
            )
            for b in biases
        )
        print(f"  unfitted CRF (per-token argmax with the best O bias): SI F1 {ident:.4f}")
    cv = []
    for r in range(args.repeats):
        order = list(np.random.default_rng(r).permutation(ids))
        folds = [order[k :: args.folds] for k in range(args.folds)]
        held: dict[str, list[tuple[int, int]]] = {}
        for k, test in enumerate(folds):
            train = [a for j, f in enumerate(folds) if j != k for a in f if a in xs]
            crf = fit([xs[a] for a in train], [ys[a] for a in train])
            best = max(
                biases,
                key=lambda b: si_f1(
                    {a: spans_of(outs[a], crf.viterbi(xs[a], b), tagger.config) for a in train},
                    gold,
                ),
            )
            for a in test:
                held[a] = (
                    spans_of(outs[a], crf.viterbi(xs[a], best), tagger.config) if a in xs else []
                )
        cv.append(si_f1(held, gold))
        print(f"  repeat {r}: cross-validated SI F1 {cv[-1]:.4f}", flush=True)
    print(
        f"CRF cross-validated SI F1 {np.mean(cv):.4f} over {args.repeats} repeats "
        f"({time.perf_counter() - t0:.0f} s); compare benchmarks/tuning_cv.py's SI"
    )


if __name__ == "__main__":
    exit_on_error(main)
