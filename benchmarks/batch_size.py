"""Milliseconds per 256-token window at each batch size, for a tagger's ONNX file and for the
same network in torch fp32: which batch size each engine of benchmarks/speed.py should use.

    python benchmarks/batch_size.py [--model small] [--batches 1,2,4,8,16] [--onnx-threads 1]
                                    [--torch-threads 2] [--engines onnx,torch]

Random token ids, no padding; 2 warm-up runs, then at least 32 windows per batch size, three
rounds (the best round is printed: the least disturbed). The ONNX file runs on
--onnx-threads (1: one of `unspin predict`'s two workers on 2 cores), torch on
--torch-threads (the plain pipeline: one article at a time on all cores). The torch engine
needs the [train] extra and uses the base encoder's weights (the same compute).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from unspin.errors import exit_on_error


def best_ms(run: Callable[[np.ndarray], object], batch: int, rounds: int = 3) -> float:
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (batch, 256)).astype(np.int64)
    ids[:, 0] = 101
    for _ in range(2):
        run(ids)
    n = max(2, 32 // batch)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            run(ids)
        times.append((time.perf_counter() - t) / n / batch * 1000)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--batches", default="1,2,4,8,16")
    ap.add_argument("--onnx-threads", type=int, default=1)
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--engines", default="onnx,torch")
    args = ap.parse_args()
    from unspin.registry import resolve_model

    folder = resolve_model(args.model)
    config = json.loads((folder / "config.json").read_text())
    batches = [int(b) for b in args.batches.split(",")]
    engines = args.engines.split(",")
    runners: dict[str, Callable[[np.ndarray], object]] = {}
    if "onnx" in engines:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.onnx_threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(
            str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        runners[f"onnx ({args.onnx_threads} thr)"] = lambda ids: sess.run(
            None, {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        )
    if "torch" in engines:
        import torch

        from unspin.train.encoders import resolve_encoder
        from unspin.train.model import Network

        torch.set_num_threads(args.torch_threads)
        net = Network(resolve_encoder(config["encoder"]), layers=config.get("layers")).eval()

        def torch_run(ids: np.ndarray) -> object:
            x = torch.from_numpy(ids)
            with torch.inference_mode():
                return net(x, torch.ones_like(x))

        runners[f"torch ({args.torch_threads} thr)"] = torch_run
    print(f"model {args.model} ({folder}): ms per 256-token window, best of 3 rounds")
    print(f"{'batch':>5} " + " ".join(f"{name:>16}" for name in runners))
    for b in batches:
        print(f"{b:5d} " + " ".join(f"{best_ms(r, b):16.1f}" for r in runners.values()))


if __name__ == "__main__":
    exit_on_error(main)
