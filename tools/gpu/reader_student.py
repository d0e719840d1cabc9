"""GPU machine script: MiniLM span readers distilled from the MPNet reader. Each trains on PTC
train's gold spans plus the spans ``small`` finds in the unlabeled news, with the MPNet
reader's probabilities as soft targets (the carry folder's unl_soft.npz, written here by
``tools/label_spans.py``: see tools/gpu/README.md, section 4). The best two by val TC come
back packed by ``common.pack_state`` (int8 change from the fp16 MiniLM, ~22 MB each).

Carry folder: minilm16/ (MiniLM in fp16, as ``prepare.py students`` writes it), data.tar.xz
(the corpus) and unl_soft.npz (``<aid>/spans`` int32 (n, 2), ``<aid>/p`` float16 (n, 14)).
Env: CARRY (default .devcarry6), OUT, DEV (cuda|cpu), TINY=1, WORK, PLAN, DEADLINE, MAXMIN.
"""

import json
import os
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
from common import Log, copy_encoder_files, pack_state, run_main, unpack_corpus

T0 = time.time()
OUT = Path(os.environ.get("OUT", "/tmp/devout6"))
DEV = os.environ.get("DEV", "cuda")
TINY = os.environ.get("TINY") == "1"
W = Path(os.environ.get("WORK", "/tmp/w6"))
ROOT = Path.cwd()
C = ROOT / os.environ.get("CARRY", ".devcarry6")
OUT.mkdir(parents=True, exist_ok=True)
log = Log(OUT / "student.log")
sys.path.insert(0, str(ROOT / "src"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["UNSPIN_ENCODERS"] = str(W)

PART = 15 * 2**20
# name: (overrides of configs/reader.toml, use the soft-labelled unlabeled spans)
RUNS = {
    "g13": ({"lr": 5e-5, "epochs": 3, "seed": 13}, False),
    "d13": ({"lr": 5e-5, "epochs": 4, "seed": 13}, True),
    "d21": ({"lr": 8e-5, "epochs": 4, "seed": 21}, True),
    "d7": ({"lr": 5e-5, "epochs": 6, "seed": 7}, True),
}


def setup() -> Path:
    unpack_corpus(C, W)
    enc = W / "minilm"
    if not (enc / "model.safetensors").exists():
        from safetensors.torch import load_file, save_file

        copy_encoder_files(C / "minilm16", enc)
        sd = load_file(str(C / "minilm16" / "model.safetensors"))
        save_file(
            {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
            str(enc / "model.safetensors"),
        )
    log("setup done")
    return enc


def main() -> int:
    import torch

    log(f"torch {torch.__version__} cuda={torch.cuda.is_available()} dev={DEV} tiny={TINY}")
    torch.backends.cuda.matmul.allow_tf32 = True
    enc = setup()
    from unspin.train.config import DEFAULTS
    from unspin.train.reader import ReaderNet, fit_reader
    from unspin.train.soft_targets import soft_rows

    z = np.load(C / "unl_soft.npz")
    aids = sorted({k.split("/")[0] for k in z.files})[: 3 if TINY else None]
    soft = {a: (z[f"{a}/spans"], z[f"{a}/p"].astype(np.float32)) for a in aids}
    texts = {a: (W / "unlabeled-news" / f"{a}.txt").read_text(encoding="utf-8") for a in aids}
    with open(ROOT / "configs/reader.toml", "rb") as f:
        base = tomllib.load(f)
    plan = os.environ.get("PLAN", ",".join(RUNS)).split(",")
    deadline = float(os.environ.get("DEADLINE", "300"))
    report: dict = {"runs": {}}
    done = []
    for name in plan:
        if time.time() - T0 > deadline:
            log(f"{name}: skipped (deadline)")
            continue
        over, distil = RUNS[name]
        cfg = {**DEFAULTS, **base, **over, "name": f"reader-{name}"}
        cfg.update(device=DEV, bf16=DEV == "cuda", threads=8)
        cfg.update(max_minutes=float(os.environ.get("MAXMIN", "1.5")))
        if TINY:
            cfg.update(max_train_articles=2, max_val_articles=2, epochs=1, threads=2)
        extra = (lambda tok, config: soft_rows(tok, config, texts, soft)) if distil else None
        net, config, rep = fit_reader(cfg, W / "ptc", extra)
        report["runs"][name] = {"cfg": over, "distil": distil, "best_f1": rep["best_f1"]}
        report["runs"][name]["hist"] = rep["history"]
        log(f"{name}: best val TC {rep['best_f1']:.4f} {rep['history']}")
        done.append((rep["best_f1"], name, net.state_dict(), config))
    if not done:
        log("no run finished")
        return 3
    init = {
        k: v.detach().clone()
        for k, v in ReaderNet(enc, done[0][3]["max_recurrence"]).state_dict().items()
        if k.startswith("encoder.")
    }
    report["sent"], report["configs"], report["parts"] = [], {}, {}
    for f1, name, state, config in sorted(done, key=lambda d: -d[0])[:2]:
        tmp = W / f"student-{name}.npz"
        np.savez(tmp, **pack_state(state, init))
        data = tmp.read_bytes()  # in parts: 16 MiB a file comes back
        report["parts"][name] = []
        for i in range(0, len(data), PART):
            part = f"student-{name}.part{i // PART}"
            (OUT / part).write_bytes(data[i : i + PART])
            report["parts"][name].append(part)
        report["configs"][name] = config
        report["sent"].append(name)
        log(f"sent {name} (val TC {f1:.4f})")
    (OUT / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    run_main(main, log)
