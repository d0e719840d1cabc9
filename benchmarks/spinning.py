"""A/B: onnxruntime's busy-waiting between runs (spinning) on vs off, same articles.

    python benchmarks/spinning.py --model fast --pairs 5 --limit 100

Each run is its own subprocess (`UNSPIN_ORT_SPINNING=1` turns spinning back on in `Tagger`);
runs alternate so that this machine's drift hits both sides. Prints articles/s per run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from unspin.errors import exit_on_error

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time
from pathlib import Path
from unspin.tagger import Tagger
files = sorted(Path(sys.argv[2]).glob('*.txt'))[: int(sys.argv[3])]
texts = [f.read_text(encoding='utf-8') for f in files]
t = Tagger(sys.argv[1], threads=2)
t.predict(texts[0])
t0 = time.perf_counter()
for x in texts:
    t.predict(x)
print(f"{len(texts) / (time.perf_counter() - t0):.2f}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="fast")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/unlabeled-news")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {"spinning": [], "no spinning": []}
    for _ in range(args.pairs):
        for label, flag in (("spinning", "1"), ("no spinning", "0")):
            env = dict(os.environ, UNSPIN_ORT_SPINNING=flag)
            cmd = [sys.executable, "-c", CHILD, args.model, str(args.data), str(args.limit)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[label].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"{label:12s} {runs[label][-1]:.2f} articles/s", flush=True)
    for label, vals in runs.items():
        print(f"{label:12s} mean {sum(vals) / len(vals):.2f} articles/s over {len(vals)} runs")


if __name__ == "__main__":
    exit_on_error(main)
