"""`medium` on the GPU machine: students of a trained 12-layer MPNet tagger, made of its bottom
6 layers (configs/medium.toml), trained for more epochs and seeds than the CPU allows (round
20: the shipped `medium` is run a7 of this script; tools/gpu/README.md, step 6).

The tagger travels NF4-packed (4-bit NormalFloat, absmax per group of 64, ``nf4.py``'s rounding;
the word embeddings only for the token rows the corpus and the unlabeled news use): the
machine takes 64 MiB per call. There it labels the unlabeled news (the students' soft targets)
and starts every student; the best student (torch val, the training loop's selection rule)
comes back as changes from that same NF4 start: int8 with a scale per row for the layer
matrices, int4 (``pack4.q4``) for the used word-embedding rows, the rest fp16.

    # here
    python tools/gpu/medium.py prepare --run runs/r17/mpnet6 --out .devcarry7
    python tools/gpu/medium.py check --carry .devcarry7      # val of the NF4 tagger (CPU)
    # there (carry .devcarry7; move the shipped model folders aside first: 64 MiB)
    DEV=cuda CARRY=.devcarry7 WORK=/tmp/w7 PLAN=a7,a42,c21 EPOCHS=8 VAL_FROM=8 MAX_MIN=4.5 \
        DEADLINE=380 python3 tools/gpu/medium.py gpu
    # here
    python tools/gpu/medium.py unpack FILES_AT runs/r20/gpu2fix --carry .devcarry7 \
        --tagger runs/r17/mpnet6/network.pt  # puts back the word-embedding rows left behind
    python -c "from unspin.train.loop import finalize as f; f('runs/r20/gpu2fix/a7', 'PTC')"

Plan names: a<seed> (lr 5e-5), b<seed> (lr 3e-5), c<seed> (lr 8e-5). Rehearse on CPU with
``DEV=cpu TINY=1 OUT=/tmp/devout7 WORK=/tmp/w7``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import (  # noqa: E402
    Log,
    keep_rest,
    run_main,
    score,
    toml_line,
    unpack_corpus,
    wait_all,
)
from nf4 import G  # noqa: E402
from nf4 import dequantize as nf4_unpack  # noqa: E402
from nf4 import quantize as nf4_pack  # noqa: E402
from pack4 import q4  # noqa: E402

WE = "encoder.embeddings.word_embeddings.weight"
SPECIALS = ("<s>", "</s>", "<pad>", "<unk>", "<mask>", "[CLS]", "[SEP]", "[PAD]", "[UNK]")


def _is_big(k: str, v) -> bool:
    return k.startswith("encoder.") and v.ndim == 2 and v.numel() >= 65536 and v.numel() % G == 0


def used_rows(tok, folders: list[Path]) -> np.ndarray:
    ids = {i for i in map(tok.token_to_id, SPECIALS) if i is not None}
    for folder in folders:
        for f in sorted(folder.glob("*.txt")):
            with open(f, encoding="utf-8", newline="") as fh:
                ids.update(tok.encode(fh.read()).ids)
    return np.array(sorted(ids), dtype=np.int32)


def prepare(run: Path, out: Path, data: Path) -> None:
    """The carry folder: corpus, MPNet tokenizer/config files, the tagger NF4-packed."""
    import torch
    from prepare import copy_tokenizer, corpus_tar

    from unspin.segment import load_tokenizer
    from unspin.train.encoders import resolve_encoder

    out.mkdir(parents=True, exist_ok=True)
    corpus_tar(data, out)
    enc = resolve_encoder("mpnet")
    copy_tokenizer(enc, out / "mpnet")
    tok = load_tokenizer(enc / "tokenizer.json")
    rows = used_rows(tok, [data / "ptc" / "train-articles", data / "unlabeled-news"])
    state = torch.load(run / "network.pt", map_location="cpu")
    arrays: dict[str, np.ndarray] = {"rows": rows}
    for k, v in state.items():
        a = v.detach().float().numpy()
        if _is_big(k, v):
            if k == WE:
                a = a[rows]
            arrays[f"q::{k}"], arrays[f"s::{k}"] = nf4_pack(a)
            arrays[f"shape::{k}"] = np.array(a.shape, dtype=np.int64)
        else:
            keep_rest(arrays, k, v)
    arrays["vocab"] = np.array([state[WE].shape[0]], dtype=np.int64)
    np.savez(out / "tagger.nf4.npz", **arrays)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB ({len(rows)} word-embedding rows)")


def nf4_state(path: Path, layers: int = 0) -> dict:
    """The NF4 tagger as a state dict (fp32; unused word-embedding rows zero), cut
    to its bottom ``layers`` layers when given. Both sides of a call build the same one."""
    import torch

    from unspin.train.loop import _bottom_layers

    z = np.load(path)
    rows, vocab = z["rows"].astype(np.int64), int(z["vocab"][0])
    state = {}
    for key in z.files:
        kind, _, k = key.partition("::")
        if kind == "q":
            w = nf4_unpack(z[key], z[f"s::{k}"], tuple(z[f"shape::{k}"]))
            if k == WE:
                full = np.zeros((vocab, w.shape[1]), dtype=np.float32)
                full[rows] = w
                w = full
            state[k] = torch.from_numpy(np.ascontiguousarray(w))
        elif kind == "f16":
            state[k] = torch.from_numpy(z[key].astype(np.float32))
        elif kind == "raw":
            state[k] = torch.from_numpy(z[key])
    return _bottom_layers(state, layers)[0] if layers else state


def encoder_folder(carry: Path, work: Path) -> Path:
    """work/mpnet: a transformers folder whose weights are the NF4 tagger's encoder."""
    from safetensors.torch import save_file

    enc = work / "mpnet"
    if not (enc / "model.safetensors").exists():
        enc.mkdir(parents=True, exist_ok=True)
        for f in (carry / "mpnet").iterdir():
            shutil.copy(f, enc / f.name)
        state = nf4_state(carry / "tagger.nf4.npz")
        sd = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
        save_file(sd, str(enc / "model.safetensors"))
        (work / "tagger12").mkdir(exist_ok=True)
        import torch

        torch.save(state, work / "tagger12" / "network.pt")
    return enc


def val_line(net, corpus: Path, max_val: int = 0) -> str:
    from unspin.corpus import load_split
    from unspin.evaluate import evaluate, tune
    from unspin.segment import load_tokenizer
    from unspin.tagger import Tagger
    from unspin.train.config import load_config
    from unspin.train.encoders import resolve_encoder
    from unspin.train.loop import _infer_config, _load, torch_backend

    tok = load_tokenizer(resolve_encoder("mpnet") / "tokenizer.json")
    val_ids = load_split(corpus, "val")[: max_val or None]
    _, tr_gold = _load(corpus, load_split(corpus, "train"))
    texts, gold = _load(corpus, val_ids)
    infer = _infer_config(load_config(ROOT / "configs/accurate.toml"), tok, tr_gold)
    tagger = Tagger.from_parts(infer, tok, torch_backend(net), net.tc_head_arrays())
    outs = {a: tagger.outputs(t) for a, t in texts.items()}
    tune(tagger, outs, gold)
    return evaluate(tagger, outs, gold).line()


def check(carry: Path, corpus: Path, run: Path | None) -> None:
    """Val (torch, CPU) of the NF4 12-layer tagger, and of the original when ``run`` is given."""
    import torch

    from unspin.train.encoders import resolve_encoder
    from unspin.train.model import Network

    torch.set_num_threads(2)
    net = Network(resolve_encoder("mpnet")).eval()
    state = nf4_state(carry / "tagger.nf4.npz")
    missing = net.load_state_dict(state, strict=False)
    print("missing", [k for k in missing.missing_keys if "pooler" not in k])
    print("NF4 tagger val:", val_line(net, corpus), flush=True)
    if run:
        net.load_state_dict(torch.load(run / "network.pt", map_location="cpu"))
        print("original val:", val_line(net, corpus), flush=True)


# ---------------------------------------------------------------- the GPU machine's side


def label(enc: Path, work: Path, tiny: bool, dev: str, log: Log) -> None:
    """work/teacher: the 12-layer NF4 tagger's soft targets on the unlabeled news, cached
    under the name the students' ``cached_teacher_targets`` looks for."""
    import torch

    from unspin.segment import load_tokenizer
    from unspin.tagger import Tagger
    from unspin.train.config import load_config
    from unspin.train.distill import _digest, char_targets, load_unlabeled
    from unspin.train.loop import _infer_config, torch_backend
    from unspin.train.model import Network

    teacher = work / "teacher"
    teacher.mkdir(exist_ok=True)
    (teacher / "config.json").write_text("{}")
    texts = load_unlabeled(work / "unlabeled-news", 3 if tiny else 0)
    name = f"targets-unlabeled-news-{len(texts)}-{_digest(teacher, texts)}.npz"
    if (teacher / name).exists():
        return
    net = Network(enc)
    net.load_state_dict(torch.load(work / "tagger12" / "network.pt", map_location="cpu"))
    net.to(torch.device(dev)).eval()
    tok = load_tokenizer(enc / "tokenizer.json")
    infer = _infer_config(load_config(ROOT / "configs/accurate.toml"), tok, {})
    tagger = Tagger.from_parts(infer, tok, torch_backend(net), net.tc_head_arrays())
    targets = char_targets(tagger, texts, log=log)
    arrays = {f"{a}/si": si for a, (si, _) in targets.items()}
    arrays.update({f"{a}/tech": t for a, (_, t) in targets.items()})
    np.savez(teacher / name, **arrays)
    log(f"labelled {len(texts)} articles")
    del net
    if dev == "cuda":
        torch.cuda.empty_cache()


def student_cfg(name: str, work: Path, dev: str, tiny: bool) -> Path:
    kind, seed = name[0], int(name[1:])
    with open(ROOT / "configs/medium.toml", "rb") as f:
        cfg = tomllib.load(f)
    cfg.update(
        name=name,
        device=dev,
        threads=2,
        seed=seed,
        lr={"a": 5e-5, "b": 3e-5, "c": 8e-5}[kind],
        epochs=int(os.environ.get("EPOCHS", "8")),
        val_from_epoch=int(os.environ.get("VAL_FROM", "7")),
        max_minutes=float(os.environ.get("MAX_MIN", "0")),
        init=str(work / "tagger12" / "network.pt"),
        teacher=str(work / "teacher"),
        unlabeled=str(work / "unlabeled-news"),
    )
    if tiny:
        cfg.update(max_train_articles=2, max_val_articles=3, epochs=1, unlabeled_limit=3)
    lines = [toml_line(k, v) for k, v in cfg.items()]
    (work / "cfg").mkdir(exist_ok=True)
    p = work / "cfg" / f"{name}.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def launch(name: str, cfg: Path, work: Path) -> subprocess.Popen:
    (work / "logs").mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="2")
    code = (
        "from unspin.train.loop import train; "
        f"train({str(cfg)!r}, {str(work / 'ptc')!r}, {str(work / 'runs' / name)!r}, "
        "finalize_run=False)"
    )
    f = open(work / "logs" / f"{name}.log", "w")  # noqa: SIM115 - the child's log
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=f, stderr=subprocess.STDOUT, env=env
    )


def pack_student(state: dict, start: dict, rows: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        a = v.detach().float().cpu().numpy()
        if k in start and _is_big(k, v):
            d = a - start[k].float().numpy()
            if k == WE:
                out[f"q4::{k}"], out[f"s4::{k}"] = q4(d[rows])
                out[f"shape4::{k}"] = np.array(d[rows].shape, dtype=np.int64)
            else:
                sc = np.abs(d).max(axis=1, keepdims=True) / 127.0
                sc[sc == 0] = 1.0
                out[f"q8::{k}"], out[f"sc::{k}"] = (
                    np.round(d / sc).astype(np.int8),
                    sc.astype(np.float32),
                )
        else:
            keep_rest(out, k, v)
    return out


def unpack_student(arrays: dict[str, np.ndarray], start: dict, rows: np.ndarray) -> dict:
    """The inverse of ``pack_student`` (the same NF4 start and word-embedding rows)."""
    import torch
    from pack4 import unpack_state

    arrays = dict(arrays)
    for key in [k for k in arrays if k.startswith("shape4::")]:  # pack4's key names
        k = key.split("::", 1)[1]
        arrays[f"shape::{k}"], arrays[f"rows::{k}"] = arrays.pop(key), rows
    state = unpack_state(arrays, start)
    for key, a in arrays.items():
        kind, k = key.split("::", 1)
        if kind == "q8":
            d = torch.from_numpy(a.astype(np.float32) * arrays[f"sc::{k}"])
            state[k] = start[k].float() + d
    return state


def gpu(log: Log) -> int:
    import torch

    t0 = time.time()
    out = Path(os.environ.get("OUT", "/tmp/devout7"))
    work = Path(os.environ.get("WORK", "/tmp/w7"))
    carry = ROOT / os.environ.get("CARRY", ".devcarry7")
    dev, tiny = os.environ.get("DEV", "cuda"), os.environ.get("TINY") == "1"
    log(f"torch {torch.__version__} cuda={torch.cuda.is_available()} dev={dev} tiny={tiny}")
    os.environ["UNSPIN_ENCODERS"] = str(work)  # work/mpnet: configs keep encoder = "mpnet"
    unpack_corpus(carry, work)
    enc = encoder_folder(carry, work)
    log("setup done")
    label(enc, work, tiny, dev, log)
    plan = os.environ.get("PLAN", "a13,a21,b13").split(",")
    procs = {n: launch(n, student_cfg(n, work, dev, tiny), work) for n in plan}
    wait_all(procs, float(os.environ.get("DEADLINE", "450")), log, t0)
    table = {n: score(work / "runs" / n) for n in plan}
    for n, s in table.items():
        log(f"RESULT {n}: {s}")
    with tarfile.open(out / "reports.tgz", "w:gz") as t:
        for n in plan:
            for rel, arc in (
                ("runs/%s/train_report.json", "train_report.json"),
                ("logs/%s.log", "train.log"),
                ("cfg/%s.toml", "config.toml"),
            ):
                p = work / (rel % n)
                if p.exists():
                    t.add(p, arcname=f"{n}/{arc}")
    done = {n: s for n, s in table.items() if s}
    if not done:
        for n in plan:
            for line in (work / "logs" / f"{n}.log").read_text(errors="replace").splitlines()[-30:]:
                log(f"  {n}| {line}")
        return 1
    best = max(done, key=lambda n: done[n]["sel"])
    rows = np.load(carry / "tagger.nf4.npz")["rows"]
    state = torch.load(work / "runs" / best / "network.pt", map_location="cpu")
    start = nf4_state(carry / "tagger.nf4.npz", 6)
    arrays = pack_student(state, start, rows)
    back = unpack_student(arrays, start, rows)
    err = max(float((back[k] - state[k].float()).abs().max()) for k in back)
    log(f"best {best}; pack round trip max abs error {err:.2e}")
    tmp = work / f"student-{best}.npz"
    np.savez_compressed(tmp, **arrays)
    data, step = tmp.read_bytes(), 15_000_000
    for i in range(0, len(data), step):
        (out / f"student-{best}.part{i // step}").write_bytes(data[i : i + step])
    log(f"sent student-{best}: {len(data) / 2**20:.1f} MiB")
    return 0


def restore_rows(state: dict, rows: np.ndarray, tagger: Path) -> int:
    """The word-embedding rows that did not travel (tokens neither PTC nor the unlabeled news
    use: zero on the GPU machine, and untouched by training there) from the original tagger's
    ``network.pt``; returns how many. Without this a shipped model would read those tokens
    as zero vectors."""
    import torch

    original = torch.load(tagger, map_location="cpu")[WE]
    unused = np.setdiff1d(np.arange(original.shape[0]), rows)
    state[WE][torch.from_numpy(unused)] = original[torch.from_numpy(unused)].float()
    return len(unused)


def unpack(files: Path, dest: Path, carry: Path, tagger: Path) -> None:
    import io

    import torch

    with tarfile.open(files / "reports.tgz") as t:
        t.extractall(dest)
    for stem in sorted({p.name.rsplit(".part", 1)[0] for p in files.glob("student-*.part*")}):
        parts = sorted(files.glob(f"{stem}.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
        with np.load(io.BytesIO(b"".join(p.read_bytes() for p in parts))) as z:
            arrays = {k: z[k] for k in z.files}
        rows = np.load(carry / "tagger.nf4.npz")["rows"]
        state = unpack_student(arrays, nf4_state(carry / "tagger.nf4.npz", 6), rows)
        n = restore_rows(state, rows, tagger)
        print(f"{n} word-embedding rows restored from {tagger}")
        name = stem.split("-", 1)[1]
        torch.save(state, dest / name / "network.pt")
        print(f"{dest / name}/network.pt")


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    c = sub.add_parser("check")
    c.add_argument("--carry", type=Path, required=True)
    c.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "ptc")
    c.add_argument("--run", type=Path)
    sub.add_parser("gpu")
    u = sub.add_parser("unpack")
    u.add_argument("files", type=Path)
    u.add_argument("dest", type=Path)
    u.add_argument("--carry", type=Path, required=True)
    u.add_argument("--tagger", type=Path, required=True, help="the original run's network.pt")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.run, a.out, a.data)
    elif a.cmd == "check":
        check(a.carry, a.corpus, a.run)
    elif a.cmd == "gpu":
        out = Path(os.environ.get("OUT", "/tmp/devout7"))
        out.mkdir(parents=True, exist_ok=True)
        log = Log(out / "dev7.log")
        run_main(lambda: gpu(log), log)
    else:
        unpack(a.files, a.dest, a.carry, a.tagger)


if __name__ == "__main__":
    main()
