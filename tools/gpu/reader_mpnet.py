"""GPU machine script: fine-tune MPNet span readers (the TC task's reader, configs/reader.toml
with encoder = "mpnet") on PTC train, keep the best by val TC F1, and send its weights back
small enough for one call (64 MiB): each large encoder matrix as its change from the NF4
starting weights, int4 with a scale per group of 32; the word embeddings only for the token
rows the corpus uses; everything else fp16. ``tools/gpu/unpack_reader.py`` rebuilds it here.

Reads the carry folder made by ``tools/gpu/prepare.py teacher`` (MPNet packed as NF4, the PTC
corpus). Env: CARRY (default .devcarry2), OUT, DEV (cuda|cpu), TINY=1 (rehearse on CPU), WORK,
PLAN (comma-separated run names from RUNS), DEADLINE (seconds; no run starts after it),
MAXMIN (minutes a run may train). See tools/gpu/README.md.
"""

import json
import os
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
from common import Log, run_main, setup_mpnet

T0 = time.time()
OUT = Path(os.environ.get("OUT", "/tmp/devout5"))
DEV = os.environ.get("DEV", "cuda")
TINY = os.environ.get("TINY") == "1"
W = Path(os.environ.get("WORK", "/tmp/w5"))
ROOT = Path.cwd()
C = ROOT / os.environ.get("CARRY", ".devcarry2")
OUT.mkdir(parents=True, exist_ok=True)
log = Log(OUT / "reader.log")
sys.path.insert(0, str(ROOT / "src"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["UNSPIN_ENCODERS"] = str(W)  # W/mpnet: the config keeps encoder = "mpnet"

# name: overrides of configs/reader.toml
RUNS = {
    "m3e5": {"lr": 3e-5, "epochs": 4, "seed": 13},
    "m2e5": {"lr": 2e-5, "epochs": 5, "seed": 21},
    "m5e5": {"lr": 5e-5, "epochs": 3, "seed": 7},
}
GROUP = 32
PART = 15 * 2**20


def setup() -> Path:
    enc = setup_mpnet(C, W)
    log("setup done")
    return enc


def q4(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int4 (-7..7) with an fp16 scale per group of GROUP, two values a byte."""
    x = d.reshape(-1, GROUP)
    s = (np.abs(x).max(1, keepdims=True) / 7.0).astype(np.float16)
    s[s == 0] = 1.0
    q = np.clip(np.round(x / s.astype(np.float32)), -7, 7).astype(np.int8) + 8
    q = q.reshape(-1).astype(np.uint8)
    return (q[0::2] | (q[1::2] << 4)).astype(np.uint8), s.reshape(-1)


def dq4(q: np.ndarray, s: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    idx = np.empty(q.size * 2, dtype=np.int8)
    idx[0::2], idx[1::2] = (q & 15).astype(np.int8) - 8, (q >> 4).astype(np.int8) - 8
    x = idx.astype(np.float32).reshape(-1, GROUP) * s.astype(np.float32)[:, None]
    return x.reshape(shape)


def pack(state: dict, start: dict, rows: np.ndarray) -> dict[str, np.ndarray]:
    """``state`` (the trained reader) as changes from ``start`` (its encoder's starting weights);
    ``rows``: the token ids whose word-embedding rows are sent (the others keep the start's)."""
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        a = v.detach().float().cpu().numpy()
        if k in start and a.ndim == 2 and a.size >= 65536 and a.size % GROUP == 0:
            d = a - start[k].float().numpy()
            if k.endswith("word_embeddings.weight"):
                out[f"rows::{k}"] = rows.astype(np.int32)
                d = d[rows]
            out[f"q4::{k}"], out[f"s4::{k}"] = q4(d)
            out[f"shape::{k}"] = np.array(d.shape, dtype=np.int64)
        elif v.is_floating_point():
            out[f"f16::{k}"] = a.astype(np.float16)
        else:
            out[f"raw::{k}"] = v.cpu().numpy()
    return out


def unpack_state(arrays: dict[str, np.ndarray], start: dict) -> dict:
    """The inverse of ``pack`` (``start``: the same starting weights)."""
    import torch

    state = {}
    for key, a in arrays.items():
        kind, k = key.split("::", 1)
        if kind == "q4":
            d = dq4(a, arrays[f"s4::{k}"], tuple(arrays[f"shape::{k}"]))
            w = start[k].float().clone()
            if f"rows::{k}" in arrays:
                w[torch.from_numpy(arrays[f"rows::{k}"].astype(np.int64))] += torch.from_numpy(d)
            else:
                w += torch.from_numpy(d)
            state[k] = w
        elif kind == "f16":
            state[k] = torch.from_numpy(a.astype(np.float32))
        elif kind == "raw":
            state[k] = torch.from_numpy(a)
    return state


def write_parts(arrays: dict[str, np.ndarray], stem: str) -> list[str]:
    tmp = W / f"{stem}.npz"
    np.savez(tmp, **arrays)
    data = tmp.read_bytes()
    names = []
    for i in range(0, len(data), PART):
        name = f"{stem}.part{i // PART}"
        (OUT / name).write_bytes(data[i : i + PART])
        names.append(name)
    return names


def main() -> int:
    import torch

    log(f"torch {torch.__version__} cuda={torch.cuda.is_available()} dev={DEV} tiny={TINY}")
    torch.backends.cuda.matmul.allow_tf32 = True
    enc = setup()
    from unspin.train.reader import _predict, fit_reader, reader_tc_f1

    with open(ROOT / "configs/reader.toml", "rb") as f:
        base = tomllib.load(f)
    plan = os.environ.get("PLAN", "m3e5,m2e5").split(",")
    deadline = float(os.environ.get("DEADLINE", "330"))
    report: dict = {"runs": {}}
    best: tuple[float, str, object, dict | None] = (-1.0, "", None, None)
    for name in plan:
        if time.time() - T0 > deadline:
            log(f"{name}: skipped (deadline)")
            continue
        cfg = {**base, **RUNS[name], "name": f"reader-{name}", "encoder": "mpnet"}
        cfg.update(device=DEV, bf16=DEV == "cuda", threads=8, max_train_articles=0)
        cfg.update(max_val_articles=0, max_minutes=float(os.environ.get("MAXMIN", "2.5")))
        if TINY:
            cfg.update(max_train_articles=2, max_val_articles=2, epochs=1, threads=2)
        from unspin.train.config import DEFAULTS

        cfg = {**DEFAULTS, **cfg}
        net, config, rep = fit_reader(cfg, W / "ptc")
        report["runs"][name] = {"cfg": RUNS[name], "best_f1": rep["best_f1"]}
        report["runs"][name]["hist"] = rep["history"]
        log(f"{name}: best val TC {rep['best_f1']:.4f} {rep['history']}")
        if rep["best_f1"] > best[0]:
            best = (rep["best_f1"], name, net, {"config": config, "rep": rep})
    _, name, net, extra = best
    if net is None or extra is None:
        log("no run finished")
        return 3
    from unspin.train.reader import ReaderNet

    start = {
        k: v.detach().clone()
        for k, v in ReaderNet(enc, extra["config"]["max_recurrence"]).state_dict().items()
        if k.startswith("encoder.")
    }
    rows = extra["rep"]["val_rows"]
    used = set(extra["config"][k] for k in ("cls_id", "sep_id", "pad_id", "start_id", "end_id"))
    for r in (*extra["rep"]["train_rows"], *rows):
        used.update(r["seq"])
    arrays = pack(net.state_dict(), start, np.array(sorted(used)))
    # the same reader rebuilt from what is sent: its val TC must match the trained one
    back = ReaderNet(enc, extra["config"]["max_recurrence"])
    back.load_state_dict(unpack_state(arrays, start))
    dev = torch.device(DEV)
    f1_back = reader_tc_f1(
        _predict(back.to(dev), rows, extra["config"]["pad_id"], dev), extra["rep"]["val_gold"]
    )
    log(f"best {name}: val TC {best[0]:.4f}; rebuilt from the int4 pack {f1_back:.4f}")
    report.update(best=name, f1_rebuilt=f1_back, config=extra["config"], rows=len(used))
    report["parts"] = write_parts(arrays, f"reader-{name}")
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    log(f"sent {report['parts']} ({time.time() - T0:.0f} s)")
    return 0


if __name__ == "__main__":
    run_main(main, log)
