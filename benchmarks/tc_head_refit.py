"""Can the span classifier (TC head) do better on its own than as trained with the encoder?

    python benchmarks/tc_head_refit.py --model small [--corpus PTC_DIR]   # needs the [train] extra

Two experiments on the shipped model's int8 features, both scored on val (TC micro-F1 and
joint F1 with the shipped decoding):
1. refit the head (same MLP) on the frozen span features of all PTC-train gold spans, from the
   shipped head or from scratch, over a small grid (epochs, learning rate, dropout);
2. undo the training's class weights at prediction time: logits - alpha * log(w), with w the
   loop's class weights (sqrt(max count / count), clipped at 5).
Neither was adopted (MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from unspin.corpus import find_corpus, load_split, load_texts_and_gold
from unspin.errors import exit_on_error
from unspin.evaluate import evaluate
from unspin.tagger import Tagger, span_vector
from unspin.techniques import TECHNIQUES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    import torch
    from torch import nn

    torch.set_num_threads(2)
    corpus = find_corpus(args.corpus)
    tagger = Tagger(args.model, threads=2)
    t0 = time.time()
    tr_texts, tr_gold = load_texts_and_gold(corpus, load_split(corpus, "train"))
    va_texts, va_gold = load_texts_and_gold(corpus, load_split(corpus, "val"))
    va_outs = {a: tagger.outputs(t) for a, t in va_texts.items()}
    xs, ys = [], []
    for a, text in tr_texts.items():
        out = tagger.outputs(text)
        for s, e, tech in tr_gold[a]:
            xs.append(span_vector(out, s, e))
            ys.append(TECHNIQUES.index(tech))
    x, y = torch.from_numpy(np.stack(xs).astype(np.float32)), torch.tensor(ys)
    print(f"{len(ys)} train spans, features {tuple(x.shape)}, {time.time() - t0:.0f} s")
    head0 = {k: v.astype(np.float32).copy() for k, v in tagger.head.items()}
    counts = np.bincount(ys, minlength=len(TECHNIQUES)) + 1
    w = np.minimum((counts.max() / counts) ** 0.5, 5.0)

    def score(head: dict[str, np.ndarray]) -> tuple[float, float]:
        tagger.head = head
        tagger._mlp = tuple(np.ascontiguousarray(head[k].T) for k in ("w1", "w2"))
        for o in va_outs.values():
            o.span_cache.clear()
        ev = evaluate(tagger, va_outs, va_gold)
        return ev.tc_f1, ev.joint_f1

    tc, jf = score(head0)
    print(f"shipped head: TC {tc:.4f} joint {jf:.4f}")
    for alpha in (0.5, 1.0):
        tc, jf = score({**head0, "b2": head0["b2"] - alpha * np.log(w)})
        print(f"class weights undone, alpha {alpha}: TC {tc:.4f} joint {jf:.4f}")

    def fit(init: bool, epochs: int, lr: float, drop: float) -> dict[str, np.ndarray]:
        torch.manual_seed(0)
        l1 = nn.Linear(head0["w1"].shape[1], head0["w1"].shape[0])
        l2 = nn.Linear(head0["w2"].shape[1], len(TECHNIQUES))
        if init:
            with torch.no_grad():
                for layer, k in ((l1, "1"), (l2, "2")):
                    layer.weight.copy_(torch.from_numpy(head0[f"w{k}"]))
                    layer.bias.copy_(torch.from_numpy(head0[f"b{k}"]))
        opt = torch.optim.AdamW([*l1.parameters(), *l2.parameters()], lr=lr, weight_decay=0.01)
        ce = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
        dp = nn.Dropout(drop)
        for _ in range(epochs):
            perm = torch.randperm(len(y))
            for i in range(0, len(y), 64):
                idx = perm[i : i + 64]
                logits = l2(nn.functional.gelu(l1(dp(x[idx])), approximate="tanh"))
                loss = ce(logits, y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return {
            "w1": l1.weight.detach().numpy(),
            "b1": l1.bias.detach().numpy(),
            "w2": l2.weight.detach().numpy(),
            "b2": l2.bias.detach().numpy(),
        }

    for init in (True, False):
        for epochs in (3, 10, 30):
            for lr in (3e-4, 1e-3):
                for drop in (0.1, 0.3):
                    tc, jf = score(fit(init, epochs, lr, drop))
                    print(
                        f"refit from {'shipped' if init else 'scratch'} epochs {epochs} lr {lr} "
                        f"dropout {drop}: TC {tc:.4f} joint {jf:.4f}",
                        flush=True,
                    )


if __name__ == "__main__":
    exit_on_error(main)
