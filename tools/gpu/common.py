"""Shared by the GPU-machine scripts: a timestamped log (stdout + $OUT file) and unpacking
the carry folder's corpus and encoder files into the scratch folder."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
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


def run_main(main: Callable[[], int], log: Callable[[str], None]) -> None:
    """Run a GPU-machine script's ``main``; log a failure's traceback (it comes back in $OUT)
    and exit with its code (2 on an exception)."""
    import sys
    import traceback

    try:
        code = main()
    except Exception as err:  # report, then fail
        log("FAILED: " + "".join(traceback.format_exception(err)))
        code = 2
    log(f"done rc={code}")
    sys.exit(code)


def score(run: Path) -> dict | None:
    """The kept epoch's torch val scores (the training loop's own selection rule), or None when
    the run left no weights."""
    import json

    rep = run / "train_report.json"
    if not (run / "network.pt").exists() or not rep.exists():
        return None
    hist = json.loads(rep.read_text())["history"]
    r = max(hist, key=lambda h: h["si_f1"] + h["joint_f1"] + 0.5 * h["tc_f1"])
    return {
        "epoch": r["epoch"],
        "si": r["si_f1"],
        "tc": r["tc_f1"],
        "joint": r["joint_f1"],
        "sel": r["si_f1"] + r["joint_f1"] + 0.5 * r["tc_f1"],
    }


def toml_line(k: str, v: object) -> str:
    """One ``key = value`` line of a training config."""
    import json

    if isinstance(v, bool):
        return f"{k} = {'true' if v else 'false'}"
    if isinstance(v, str):
        return f"{k} = {json.dumps(v)}"
    return f"{k} = {v!r}"


def keep_rest(out: dict[str, np.ndarray], k: str, v) -> None:
    """A tensor that is not packed small: fp16 if floating point, else as it is."""
    if v.is_floating_point():
        out[f"f16::{k}"] = v.detach().float().cpu().numpy().astype(np.float16)
    else:
        out[f"raw::{k}"] = v.cpu().numpy()


def unpack_corpus(carry: Path, work: Path) -> None:
    """carry/data.tar.xz -> work/ptc and work/unlabeled-news (once)."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "ptc").exists():
        with tarfile.open(carry / "data.tar.xz") as t:
            t.extractall(work)


def setup_mpnet(carry: Path, work: Path) -> Path:
    """The corpus and the MPNet encoder (unpacked from carry/mpnet's NF4 file) in ``work``
    (once); returns the encoder folder, ``work/mpnet``."""
    unpack_corpus(carry, work)
    return nf4_encoder(carry, work / "mpnet")


def nf4_encoder(carry: Path, enc: Path) -> Path:
    """The MPNet encoder of carry/mpnet (its NF4-rounded weights: the start both sides of a
    GPU call share) as a transformers folder ``enc`` (once); returns ``enc``."""
    from nf4 import unpack

    if not (enc / "model.safetensors").exists():
        copy_encoder_files(carry / "mpnet", enc)
        unpack(str(carry / "mpnet/model.nf4.npz"), str(enc / "model.safetensors"))
    return enc


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


def pack_state(state: dict, init: dict, min_numel: int = 65536) -> dict[str, np.ndarray]:
    """A trained state dict, small enough to come back from a GPU-machine call (16 MB a file,
    64 MB a call): each large 2-D weight as its change from the starting weights (``init``,
    the pretrained encoder the run began from), int8 with a scale per row; everything else fp16.
    Fine-tuning moves weights little, so the int8 step is ~1/100 of the change's spread."""
    out: dict[str, np.ndarray] = {}
    for k, v in state.items():
        a = v.detach().float().cpu().numpy()
        if a.ndim == 2 and a.size >= min_numel and k in init and init[k].shape == v.shape:
            d = a - init[k].detach().float().cpu().numpy()
            scale = np.abs(d).max(axis=1, keepdims=True) / 127.0
            scale[scale == 0] = 1.0
            out[f"q8::{k}"] = np.round(d / scale).astype(np.int8)
            out[f"sc::{k}"] = scale.astype(np.float32)
        elif v.is_floating_point():
            out[f"f16::{k}"] = a.astype(np.float16)
        else:
            out[f"raw::{k}"] = v.cpu().numpy()
    return out


def unpack_state(arrays: dict[str, np.ndarray], init: dict) -> dict:
    """The inverse of ``pack_state`` (``init`` must be the same starting weights)."""
    import torch

    state = {}
    for key, a in arrays.items():
        kind, k = key.split("::", 1)
        if kind == "q8":
            d = a.astype(np.float32) * arrays[f"sc::{k}"]
            state[k] = init[k].detach().float().cpu() + torch.from_numpy(d)
        elif kind == "f16":
            state[k] = torch.from_numpy(a.astype(np.float32))
        elif kind == "raw":
            state[k] = torch.from_numpy(a)
    return state


def encoder_start(folder: Path, layers: int) -> dict:
    """The encoder weights a student run starts from (the bottom ``layers``, 0 = all), as
    carried: rounded to fp16. ``pack_state`` on the GPU machine and ``unpack_state`` here must
    use the same ones. Needs ``src/`` on ``sys.path`` (both scripts put it there)."""
    from unspin.train.model import Network

    net = Network(folder, layers=layers or None)
    return {
        k: v.detach().half().float()
        for k, v in net.state_dict().items()
        if k.startswith("encoder.")
    }


def wait_all(
    procs: dict[str, subprocess.Popen],
    deadline: float,
    log: Callable[[str], None],
    t0: float,
) -> dict[str, int | None]:
    """Wait for every process; kill those still running ``deadline`` seconds after ``t0``
    (their return code is then None). Each exit is logged."""
    rcs: dict[str, int | None] = {}
    while len(rcs) < len(procs):
        for n, p in procs.items():
            if n not in rcs and p.poll() is not None:
                rcs[n] = p.returncode
                log(f"{n} exited {p.returncode}")
        if time.time() - t0 > deadline:
            for n, p in procs.items():
                if n not in rcs:
                    p.kill()
                    rcs[n] = None
                    log(f"{n} killed at deadline")
            break
        time.sleep(2)
    return rcs
