"""Build the folder a GPU-machine call carries (at most 64 MiB with the repo): the corpus, the
base encoder's weights packed small, and (for students) the teacher's soft targets as uint8.

    python tools/gpu/prepare.py teacher  --out .devcarry2     # MPNet packed as NF4 (~58 MB)
    python tools/gpu/prepare.py students --out .devcarry --targets runs/base6/targets_u8-400.npz

Add the folder to .git/info/exclude; never commit it (it holds the PTC corpus).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from common import targets_to_uint8

HERE = Path(__file__).resolve().parent
TOKENIZER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def corpus_tar(data: Path, out: Path) -> None:
    with tarfile.open(out / "data.tar.xz", "w:xz") as t:
        t.add(data / "ptc", arcname="ptc")
        t.add(data / "unlabeled-news", arcname="unlabeled-news")


def copy_tokenizer(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, dst / name)


def to_uint8(targets: Path, out: Path) -> None:
    """A teacher's soft-target file as the uint8 form the GPU-machine scripts expect."""
    with np.load(targets) as z:
        if all(z[k].dtype == np.uint8 for k in z.files):
            shutil.copy(targets, out / "targets_u8.npz")
            return
        arrays = {k: targets_to_uint8(z[k]) for k in z.files}
    np.savez_compressed(out / "targets_u8.npz", **arrays)


def encoder_from_run(run: Path, pretrained: Path, dst: Path) -> None:
    """A run's fine-tuned encoder (from RUN/network.pt) saved as a transformers model folder."""
    import torch

    from unspin.train.model import Network

    net = Network(pretrained)
    state = torch.load(run / "network.pt", map_location="cpu")
    net.load_state_dict(state)
    net.encoder.save_pretrained(str(dst), safe_serialization=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["teacher", "students"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--targets", type=Path, help="teacher soft targets (students only)")
    ap.add_argument(
        "--encoder-from",
        type=Path,
        help="students only: start from this run's fine-tuned encoder (RUN/network.pt) instead "
        "of the pretrained MiniLM (e.g. a 2-layer student from the shipped small's layers)",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from unspin.train.encoders import resolve_encoder

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    corpus_tar(args.data, out)
    if args.what == "teacher":
        enc = resolve_encoder("mpnet")
        copy_tokenizer(enc, out / "mpnet")
        subprocess.run(
            [
                sys.executable,
                str(HERE / "nf4.py"),
                "pack",
                str(enc / "model.safetensors"),
                str(out / "mpnet" / "model.nf4.npz"),
            ],
            check=True,
        )
    else:
        if args.targets is None:
            ap.error("students need --targets")
        from safetensors.torch import load_file, save_file

        enc = resolve_encoder("minilm")
        copy_tokenizer(enc, out / "minilm16")
        if args.encoder_from:
            encoder_from_run(args.encoder_from, enc, out / "minilm16")
            sd = load_file(str(out / "minilm16" / "model.safetensors"))
        else:
            sd = load_file(str(enc / "model.safetensors"))
        save_file(
            {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
            str(out / "minilm16" / "model.safetensors"),
        )
        to_uint8(args.targets, out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
