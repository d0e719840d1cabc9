"""Time ONNX model files per 256-token window, and where the time goes (onnxruntime profiler).

    python benchmarks/onnx_kernels.py FILE.onnx [FILE.onnx ...] [--threads 2] [--profile]

Random token ids, batch 8 x 256, 2 warm-up runs then the mean of 5; ``--profile`` also prints
milliseconds per batch by operator type. Used for the ms/window figures in BENCHMARKS.md
(e.g. runs/fast/onnx/model.fp32.onnx vs model.onnx).
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from unspin.errors import exit_on_error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (8, 256)).astype(np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    for path in args.files:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.enable_profiling = args.profile
        opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / "unspin_ort_profile")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        for _ in range(2):
            sess.run(None, feed)
        t0 = time.perf_counter()
        for _ in range(5):
            sess.run(None, feed)
        print(f"{path}: {(time.perf_counter() - t0) / 5 / 8 * 1000:.1f} ms/window")
        if args.profile:
            by_op: collections.Counter[str] = collections.Counter()
            for ev in json.load(open(sess.end_profiling())):
                if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
                    by_op[ev["args"]["op_name"]] += ev["dur"]
            total = sum(by_op.values()) / 7 / 1000  # 7 profiled runs
            for op, us in by_op.most_common(8):
                print(f"  {op:28} {us / 7 / 1000:7.1f} ms/batch")
            print(f"  {'total':28} {total:7.1f} ms/batch")


if __name__ == "__main__":
    exit_on_error(main)
