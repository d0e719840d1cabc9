"""GPU machine script: fine-tune the MPNet teacher (configs/base-6ep.toml) on PTC, then label
the unlabeled news with it; writes the soft targets (uint8) and the train report to OUT.

Reads the carry folder made by ``tools/gpu/prepare.py teacher`` (MPNet packed as NF4, since the
machine takes 64 MiB per call; the corpus). Env: CARRY (default .devcarry2), OUT, DEV
(cuda|cpu), TINY=1 (rehearse on CPU), WORK, EPOCHS, MAXMIN, NAME (run name; default base_gpu),
SEED, THREADS, TF32=1 (TensorFloat-32 matrix products on the GPU). tools/gpu/teachers.py runs
several of these in parallel (a teacher ensemble). See tools/gpu/README.md.

SEND_WEIGHTS=1: instead of labelling the unlabeled news, send the trained tagger back, packed as
int4 changes from the NF4 start (``pack4.py``, ~55 MB in 15 MB parts; the targets would not
fit beside it), with its val scores before and after the round trip;
``tools/gpu/unpack_tagger.py`` rebuilds ``network.pt`` here, for ``finalize``.
"""

import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
from common import Log, run_main, setup_mpnet, targets_to_uint8, toml_line

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


def val_line(net, full: dict, tok) -> str:
    """The network's val scores, decoding tuned on val (as each training epoch reports them)."""
    from unspin.corpus import load_split
    from unspin.evaluate import evaluate, tune
    from unspin.tagger import Tagger
    from unspin.train.loop import _infer_config, _load, torch_backend

    corpus = W / "ptc"
    train_ids, val_ids = load_split(corpus, "train"), load_split(corpus, "val")
    if full["max_val_articles"]:
        val_ids = val_ids[: full["max_val_articles"]]
    _, tr_gold = _load(corpus, train_ids)
    texts, gold = _load(corpus, val_ids)
    infer = _infer_config(full, tok, tr_gold)
    tagger = Tagger.from_parts(infer, tok, torch_backend(net), net.tc_head_arrays())
    outs = {a: tagger.outputs(t) for a, t in texts.items()}
    tune(tagger, outs, gold)
    return evaluate(tagger, outs, gold).line()


def send_weights(net, enc: Path, full: dict, tok) -> int:
    """The trained tagger as int4 changes from the NF4 start, in parts, checked by a rebuild."""
    import torch
    from pack4 import pack, unpack_state, write_parts

    from unspin.corpus import load_split
    from unspin.train.distill import load_unlabeled
    from unspin.train.loop import _load
    from unspin.train.model import Network

    start = {k: v.detach().clone() for k, v in Network(enc).state_dict().items()}
    start = {k: v for k, v in start.items() if k.startswith("encoder.")}
    corpus = W / "ptc"
    texts, _ = _load(corpus, load_split(corpus, "train") + load_split(corpus, "val"))
    specials = ("<s>", "</s>", "<pad>", "<unk>", "[CLS]", "[SEP]", "[PAD]", "[UNK]")
    used = {i for i in map(tok.token_to_id, specials) if i is not None}
    for text in [*texts.values(), *load_unlabeled(W / "unlabeled-news", 3 if TINY else 0).values()]:
        used.update(tok.encode(text).ids)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    arrays = pack(state, start, np.array(sorted(used)))
    back = Network(enc)
    back.load_state_dict(unpack_state(arrays, start))
    back.to(torch.device(DEV)).eval()
    report = {"name": NAME, "rows": len(used), "val_trained": val_line(net, full, tok)}
    report["val_rebuilt"] = val_line(back, full, tok)
    log(f"val trained: {report['val_trained']}")
    log(f"val rebuilt from the int4 pack: {report['val_rebuilt']}")
    report["parts"] = write_parts(arrays, f"tagger-{NAME}", W, OUT)
    (OUT / f"tagger-{NAME}.json").write_text(json.dumps(report, indent=1))
    size = sum((OUT / p).stat().st_size for p in report["parts"])
    log(f"sent {report['parts']} ({size / 2**20:.1f} MiB)")
    return 0


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
    lines = [toml_line(k, v) for k, v in cfg.items()]
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
    if os.environ.get("SEND_WEIGHTS") == "1":
        return send_weights(net, enc, full, tok)
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
