"""Average the weights of trained runs of one network ("model soup"), then tune, calibrate
and export the average like any run.

    python tools/soup.py OUT RUN_A RUN_B [RUN_C ...] [--corpus ../shared/data/ptc]

Every RUN is a folder with network.pt and train_report.json (what `unspin train` writes); the
runs must share the encoder and layers, and should share an ancestor (a run and its
continuation), or the average is meaningless. OUT gets the averaged network.pt, a
train_report.json (the first run's config, named after OUT, with the members listed) and
OUT/onnx from `unspin.train.loop.finalize`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from unspin.corpus import find_corpus
from unspin.errors import exit_on_error
from unspin.train.loop import finalize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    corpus = find_corpus(args.corpus)
    states = [torch.load(r / "network.pt", map_location="cpu") for r in args.runs]
    first = states[0]
    for run, state in zip(args.runs[1:], states[1:], strict=True):
        if set(state) != set(first) or any(state[k].shape != first[k].shape for k in first):
            raise SystemExit(f"{run} is not the same network as {args.runs[0]}")
    # floating-point weights are averaged in fp32 and stored in the first run's dtype; integer
    # buffers (position ids) are the first run's
    avg = {
        k: (sum(s[k].float() for s in states) / len(states)).to(first[k].dtype)
        if first[k].is_floating_point()
        else first[k]
        for k in first
    }
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(avg, args.out / "network.pt")
    meta = json.loads((args.runs[0] / "train_report.json").read_text(encoding="utf-8"))
    config = dict(meta["config"], name=args.out.name, soup=[str(r) for r in args.runs])
    report = {"config": config, "history": [], "train_minutes": 0.0}
    (args.out / "train_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    finalize(args.out, corpus)


if __name__ == "__main__":
    exit_on_error(main)
