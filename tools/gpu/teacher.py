"""GPU machine script: fine-tune the MPNet teacher (configs/base-6ep.toml) on PTC, then label
the unlabeled news with it; writes the soft targets (uint8) and the train report to OUT.

Reads the carry folder made by ``tools/gpu/prepare.py teacher`` (MPNet packed as NF4, since the
machine takes 64 MiB per call; the corpus). Env: CARRY (default .devcarry2), OUT, DEV
(cuda|cpu), TINY=1 (rehearse on CPU), WORK, EPOCHS, MAXMIN, NAME (run name; default base_gpu),
SEED, THREADS, TF32=1 (TensorFloat-32 matrix products on the GPU). tools/gpu/teachers.py runs
several of these in parallel (a teacher ensemble). See tools/gpu/README.md.
"""

import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
from common import Log, run_main, setup_mpnet, targets_to_uint8

OUT = Path(os.environ.get("OUT", "/tmp/devout2"))
DEV = os.environ.get("DEV", "cuda")
TINY = os.environ.get("TINY") == "1"
W = Path(os.environ.get("WORK", "/tmp/w2"))
ROOT = Path.cwd()
C = ROOT / os.environ.get("CARRY", ".devcarry2")
OUT.mkdir(parents=True, exist_ok=True)
NAME = os.environ.get("NAME", "base_gpu")
log = Log(OUT / ("dev2.log" if NAME == "base_gpu" else f"dev2-{NAME}.log"))
sys.path.insert(0, str(ROOT / "src"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["UNSPIN_ENCODERS"] = str(W)  # W/mpnet: the config keeps encoder = "mpnet"


def setup() -> Path:
    enc = setup_mpnet(C, W)
    log("setup done")
    return enc


def main() -> int:
    import torch

    log(f"torch {torch.__version__} cuda={torch.cuda.is_available()} dev={DEV} tiny={TINY}")
    if os.environ.get("TF32") == "1":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    enc = setup()
    if os.environ.get("SETUP_ONLY") == "1":
        return 0
    from unspin.segment import load_tokenizer
    from unspin.tagger import Tagger
    from unspin.train.distill import char_targets, load_unlabeled
    from unspin.train.loop import _infer_config, load_config, torch_backend, train
    from unspin.train.model import Network

    with open(ROOT / "configs/base-6ep.toml", "rb") as f:
        cfg = tomllib.load(f)
    cfg.update(
        device=DEV,
        threads=int(os.environ.get("THREADS", "8")),
        epochs=int(os.environ.get("EPOCHS", cfg["epochs"])),
        max_minutes=float(os.environ.get("MAXMIN", "4.0")),
    )
    if os.environ.get("SEED"):
        cfg.update(seed=int(os.environ["SEED"]), name=NAME)
    if TINY:
        cfg.update(max_train_articles=2, max_val_articles=2, epochs=1)
    lines = []
    for k, v in cfg.items():
        val = json.dumps(v) if isinstance(v, (str, bool)) else repr(v)
        lines.append(f"{k} = {val}")
    cfg_path = W / f"{NAME}.toml"
    cfg_path.write_text("\n".join(lines) + "\n")
    run = W / "runs" / NAME
    train(cfg_path, W / "ptc", run, finalize_run=False)
    sfx = "" if NAME == "base_gpu" else f"-{NAME}"
    shutil.copy(run / "train_report.json", OUT / f"train_report{sfx}.json")
    shutil.copy(cfg_path, OUT / f"{NAME}.toml")
    log("trained; labelling")
    full = load_config(cfg_path)
    tok = load_tokenizer(enc / "tokenizer.json")
    net = Network(enc)
    net.load_state_dict(torch.load(run / "network.pt", map_location="cpu"))
    net.to(torch.device(DEV)).eval()
    # tc_prior ({}: all zeros) only answers for blank articles; the unlabeled news has none
    tagger = Tagger.from_parts(
        _infer_config(full, tok, {}), tok, torch_backend(net), net.tc_head_arrays()
    )
    texts = load_unlabeled(W / "unlabeled-news", 3 if TINY else 0)
    targets = char_targets(tagger, texts, log=log)
    arrays = {}
    for aid, (si, tech) in targets.items():
        arrays[f"{aid}/si"], arrays[f"{aid}/tech"] = targets_to_uint8(si), targets_to_uint8(tech)
    np.savez_compressed(OUT / f"targets_u8-{len(texts)}{sfx}.npz", **arrays)
    log(f"labelled {len(texts)} articles")
    return 0


if __name__ == "__main__":
    run_main(main, log)
