"""Soft targets for a span reader's `soft_targets` (round 10's distillation): the spans a shipped
model finds in a folder of unlabeled articles, each with a teacher reader's 14 probabilities.

    python tools/label_spans.py --teacher runs/reader_mpnet/reader --fp32 --out runs/unl_soft.npz

`--fp32` reads the teacher's model.fp32.onnx (an MPNet reader's int8 export is broken:
MODEL_CARD.md). A port of round 10's scratch script, whose run found 2,349 spans with `small`
in the 400 articles of ../shared/data/unlabeled-news (83 s) and labelled them with the MPNet
reader's fp32 export in 388 s on 2 cores (docs/experiments.md, round 10).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from unspin.errors import exit_on_error  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--teacher", type=Path, required=True, help="a span reader folder")
    ap.add_argument("--fp32", action="store_true", help="use its model.fp32.onnx")
    ap.add_argument("--model", default="small", help="the shipped model that finds the spans")
    ap.add_argument("--unlabeled", type=Path, default=Path("../shared/data/unlabeled-news"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from unspin.reader import SpanReader
    from unspin.tagger import Tagger
    from unspin.train.distill import load_unlabeled
    from unspin.train.soft_targets import label_spans

    texts = load_unlabeled(args.unlabeled)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.teacher
        if args.fp32:
            folder = Path(tmp)
            for name in ("config.json", "tokenizer.json"):
                shutil.copy(args.teacher / name, folder / name)
            (folder / "model.onnx").symlink_to((args.teacher / "model.fp32.onnx").resolve())
        arrays = label_spans(
            Tagger(args.model, threads=args.threads),
            SpanReader(folder, threads=args.threads),
            texts,
        )
    np.savez_compressed(args.out, **arrays)
    n = sum(len(v) for k, v in arrays.items() if k.endswith("/spans"))
    print(f"{n} spans in {len(texts)} articles labelled in {time.time() - t0:.0f} s: {args.out}")


if __name__ == "__main__":
    exit_on_error(main)
