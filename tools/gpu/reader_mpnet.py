"""GPU machine script: fine-tune MPNet span readers (the TC task's reader, configs/reader.toml
with encoder = "mpnet") on PTC train, keep the best by val TC F1, and send its weights back
small enough for one call (64 MiB): int4 changes from the NF4 starting weights
(``pack4.py``). ``tools/gpu/unpack_reader.py`` rebuilds it here.

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
from pack4 import pack, unpack_state, write_parts

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


def setup() -> Path:
    enc = setup_mpnet(C, W)
    log("setup done")
    return enc


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
    report["parts"] = write_parts(arrays, f"reader-{name}", W, OUT)
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    log(f"sent {report['parts']} ({time.time() - T0:.0f} s)")
    return 0


if __name__ == "__main__":
    run_main(main, log)
