"""Shared by the GPU-machine scripts: a timestamped log (stdout + $OUT file) and unpacking
the carry folder's corpus and encoder files into the scratch folder."""

from __future__ import annotations

import shutil
import tarfile
import time
from pathlib import Path

import numpy as np


class Log:
    def __init__(self, path: Path) -> None:
        self.t0 = time.time()
        self.file = open(path, "a")  # noqa: SIM115 - kept open for the script's life

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def unpack_corpus(carry: Path, work: Path) -> None:
    """carry/data.tar.xz -> work/ptc and work/unlabeled-news (once)."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "ptc").exists():
        with tarfile.open(carry / "data.tar.xz") as t:
            t.extractall(work)


def copy_encoder_files(src: Path, dst: Path) -> None:
    """Everything of an encoder folder except its (packed) weights."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.suffix not in (".safetensors", ".npz"):
            shutil.copy(f, dst / f.name)


def targets_to_uint8(a: np.ndarray) -> np.ndarray:
    """Soft targets (probabilities, NaN where no token covers a character) as uint8: round(p *
    254), 255 for NaN. A quarter of the bytes, for the 64 MiB a GPU-machine call may carry."""
    return np.where(np.isnan(a), 255, np.clip(np.round(np.nan_to_num(a) * 254), 0, 254)).astype(
        np.uint8
    )


def targets_from_uint8(q: np.ndarray) -> np.ndarray:
    a = q.astype(np.float32) / 254.0
    a[q == 255] = np.nan
    return a
