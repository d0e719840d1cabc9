"""A/B of ``Tagger(workers=...)`` in one process, on the same articles, alternating.

    python benchmarks/workers.py --model fast [--limit 100] [--pairs 2] [--profile]

Prints articles/s for one article at a time on all threads (workers 1) and for two articles
side by side on one thread each (workers 2), ``--pairs`` times each, alternating so that drift
hits both. ``--profile`` adds a cProfile of one workers-1 pass (where the time goes).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from pathlib import Path

from unspin.errors import exit_on_error
from unspin.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="fast")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "unlabeled-news"))
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    files = sorted(Path(args.data).glob("*.txt"))[: args.limit]
    texts = [f.read_text(encoding="utf-8") for f in files]
    taggers = {w: Tagger(args.model, threads=args.threads, workers=w) for w in (1, 2)}
    for t in taggers.values():
        t.predict("The brave soldiers crushed the terrorists, said the minister.")
    for _ in range(args.pairs):
        for w, tagger in taggers.items():
            t0 = time.perf_counter()
            n = sum(len(s) for s in tagger.predict_many(texts))
            rate = len(texts) / (time.perf_counter() - t0)
            print(f"{args.model} workers {w}: {rate:.2f} articles/s ({n} spans)", flush=True)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for text in texts:
            taggers[1].predict(text)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    exit_on_error(main)
