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

from unspin.corpus import default_corpus_dir
from unspin.train.loop import finalize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    states = [torch.load(r / "network.pt", map_location="cpu") for r in args.runs]
    keys = set(states[0])
    if any(set(s) != keys for s in states):
        raise SystemExit("the runs are not the same network (different weights)")
    avg = {
        k: (sum(s[k].float() for s in states) / len(states)).to(states[0][k].dtype)
        if states[0][k].is_floating_point()
        else states[0][k]
        for k in states[0]
    }
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(avg, args.out / "network.pt")
    meta = json.loads((args.runs[0] / "train_report.json").read_text(encoding="utf-8"))
    config = dict(meta["config"], name=args.out.name, soup=[str(r) for r in args.runs])
    report = {"config": config, "history": [], "train_minutes": 0.0}
    (args.out / "train_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    corpus = args.corpus or default_corpus_dir()
    if corpus is None:
        raise SystemExit("no corpus: pass --corpus PATH (the PTC folder)")
    finalize(args.out, corpus)


if __name__ == "__main__":
    main()
