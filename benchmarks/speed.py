"""Speed of a shipped model: ONNX int8 (what unspin runs) vs the same network in torch fp32.

Each engine runs in its own subprocess so that cold start and peak RSS are its own.
Measures over ../shared/data/unlabeled-news: articles/s, p50/p95 latency per article
(tokenization, windows, network, decoding and span labelling included), peak RSS, cold start
(process start -> model loaded -> first short article tagged).

    python benchmarks/speed.py --model small [--limit 400] [--threads 2] [--engines onnx,torch]
                               [--workers 2]

--workers N (ONNX engine only): N articles tagged side by side, each on threads/N onnxruntime
threads (``Tagger(workers=N)``, what ``unspin predict`` does by default with N = 2); latencies
are then per article while another one runs. The torch engine is always one article at a time
on all threads (the plain pipeline), in batches of --torch-batch windows (default 8, its
fastest or tied end to end, BENCHMARKS.md round 14; the ONNX engine runs windows as Tagger
does: one at a time).

The torch engine needs the [train] extra and the run folder of the model (runs/<name>/network.pt);
without it, it runs the same architecture with the base encoder's weights (same compute).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from unspin.errors import exit_on_error

ROOT = Path(__file__).resolve().parents[1]


def _torch_tagger(folder: Path):
    """The model's network in torch fp32 (weights from runs/<name>/network.pt when present;
    otherwise the base encoder's: the same compute), with the same windows and decoding."""
    import numpy as np
    import torch

    from unspin.segment import load_tokenizer
    from unspin.tagger import Tagger
    from unspin.train.encoders import resolve_encoder
    from unspin.train.loop import torch_backend
    from unspin.train.model import Network

    config = json.loads((folder / "config.json").read_text())
    net = Network(resolve_encoder(config["encoder"]), layers=config.get("layers")).eval()
    ckpt = ROOT / "runs" / config["name"] / "network.pt"
    if ckpt.is_file():
        net.load_state_dict(torch.load(ckpt, map_location="cpu"))
    head = dict(np.load(folder / "tc_head.npz"))
    return Tagger.from_parts(
        config, load_tokenizer(folder / "tokenizer.json"), torch_backend(net), head
    )


def cpu_description() -> str:
    """The CPU's model name and the instruction set that decides int8 speed (AVX-512 VNNI or
    not), from /proc/cpuinfo; "unknown CPU" elsewhere."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown CPU"
    name = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
        "unknown CPU",
    )
    flags = next((ln for ln in info.splitlines() if ln.startswith("flags")), "").split()
    isa = "AVX-512 VNNI" if "avx512_vnni" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name}, {isa}"


def child(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    import resource

    import numpy as np

    if args.engine == "onnx":
        from unspin.tagger import Tagger

        tagger = Tagger(args.model, threads=args.threads, workers=args.workers)
    else:
        import torch

        from unspin.registry import resolve_model
        from unspin.tagger import Tagger

        torch.set_num_threads(args.threads)
        folder = resolve_model(args.model)
        config = json.loads((folder / "config.json").read_text())
        if config.get("members"):  # an ensemble: its members in torch, averaged the same way
            from unspin.registry import member_folder

            parts = [_torch_tagger(member_folder(folder, m)) for m in config["members"]]
            tagger = Tagger.ensemble(config, parts)
        else:
            tagger = _torch_tagger(folder)
        # torch at its own fastest batch, whatever the ONNX model's (benchmarks/batch_size.py)
        tagger.batch_size = args.torch_batch
        for member in tagger.members:
            member.batch_size = args.torch_batch
    tagger.predict("The brave soldiers crushed the terrorists, said the minister.")
    cold = time.perf_counter() - t0
    files = sorted(Path(args.data).glob("*.txt"))[: args.limit]
    texts = [f.read_text(encoding="utf-8") for f in files]

    def timed(text: str) -> tuple[int, float]:
        t = time.perf_counter()
        n = len(tagger.predict(text))
        return n, time.perf_counter() - t

    start = time.perf_counter()
    done = list(tagger.map(timed, texts))
    total = time.perf_counter() - start
    n_spans = sum(n for n, _ in done)
    lat = [t for _, t in done]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "engine": args.engine,
                "model": args.model,
                "articles": len(texts),
                "chars": sum(map(len, texts)),
                "articles_per_s": len(texts) / total,
                "p50_ms": float(np.percentile(lat, 50) * 1000),
                "p95_ms": float(np.percentile(lat, 95) * 1000),
                "peak_rss_mb": rss,
                "cold_start_s": cold,
                "spans": n_spans,
                "threads": args.threads,
                "workers": args.workers if args.engine == "onnx" else 1,
                "latencies_s": lat,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "unlabeled-news"))
    ap.add_argument("--limit", type=int, default=400, help="articles for the ONNX engine")
    ap.add_argument("--torch-limit", type=int, default=100, help="articles for the torch engine")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="ONNX engine: articles side by side")
    ap.add_argument(
        "--torch-batch",
        type=int,
        default=8,
        help="torch engine: windows per forward pass (8: its fastest or tied, BENCHMARKS.md)",
    )
    ap.add_argument("--engines", default="onnx,torch")
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument(
        "--write-config",
        action="store_true",
        help="record the ONNX numbers in the model's config.json (speed)",
    )
    args = ap.parse_args()
    if args.engine:
        child(args)
        return
    results = []
    for engine in args.engines.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--engine",
            engine,
            "--model",
            args.model,
            "--data",
            args.data,
            "--limit",
            str(args.limit if engine == "onnx" else args.torch_limit),
            "--threads",
            str(args.threads),
            "--workers",
            str(args.workers),
            "--torch-batch",
            str(args.torch_batch),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"model {args.model}, {args.threads} threads, ONNX workers {args.workers}, "
        f"torch batch {args.torch_batch}, articles from {args.data}"
    )
    head = f"{'engine':8} {'articles':>8} {'art/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'RSS MB':>8}"
    print(head + f" {'cold s':>7}")
    for r in results:
        print(
            f"{r['engine']:8} {r['articles']:8d} {r['articles_per_s']:7.2f} {r['p50_ms']:8.0f} "
            f"{r['p95_ms']:8.0f} {r['peak_rss_mb']:8.0f} {r['cold_start_s']:7.2f}"
        )
    if len(results) == 2:  # both engines ran the first n articles of the sorted list
        r = {x["engine"]: x for x in results}
        if r["onnx"]["articles"] == r["torch"]["articles"]:
            ratio = r["onnx"]["articles_per_s"] / r["torch"]["articles_per_s"]
            how = f"ONNX with {args.workers} workers" if args.workers > 1 else "ONNX"
            print(
                f"speed-up ({how} against torch one article at a time; articles/s) on the "
                f"same {r['onnx']['articles']} articles: {ratio:.2f}x"
            )
        else:
            print(
                "no speed-up printed: the engines ran different numbers of articles "
                "(give --limit and --torch-limit the same value)"
            )
    if args.write_config:
        from unspin.registry import resolve_model

        cfg_path = resolve_model(args.model) / "config.json"
        cfg = json.loads(cfg_path.read_text())
        onnx = next(r for r in results if r["engine"] == "onnx")
        cfg["speed"] = {
            k: round(onnx[k], 2)
            for k in ("articles_per_s", "p50_ms", "p95_ms", "peak_rss_mb", "cold_start_s")
        }
        cfg["speed"]["threads"] = args.threads
        cfg["speed"]["workers"] = args.workers
        cfg["speed"]["cpu"] = cpu_description()
        cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")


if __name__ == "__main__":
    exit_on_error(main)
