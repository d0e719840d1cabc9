"""Weights small enough for one GPU-machine call (64 MiB each way): each large encoder matrix as
its change from the starting weights both sides hold (the NF4-rounded encoder of the carry
folder), in int4 with an fp16 scale per group of 32; the word embeddings only for the token
rows the texts use (the other rows keep the start's); everything else fp16. Used by
``reader_mpnet.py`` (span readers) and ``teacher.py`` (``SEND_WEIGHTS=1``: the MPNet tagger).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GROUP = 32
PART = 15 * 2**20  # bytes per file sent back


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
    """``state`` (a trained network) as changes from ``start`` (its encoder's starting weights,
    same keys); ``rows``: the token ids whose word-embedding rows are sent."""
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


def write_parts(arrays: dict[str, np.ndarray], stem: str, work: Path, out: Path) -> list[str]:
    """``arrays`` as one .npz cut into PART-byte files ``out/stem.partN``; their names."""
    tmp = work / f"{stem}.npz"
    np.savez(tmp, **arrays)
    data = tmp.read_bytes()
    names = []
    for i in range(0, len(data), PART):
        name = f"{stem}.part{i // PART}"
        (out / name).write_bytes(data[i : i + PART])
        names.append(name)
    return names


def read_parts(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    """What ``write_parts`` wrote, joined and loaded."""
    import io

    data = b"".join((folder / n).read_bytes() for n in names)
    with np.load(io.BytesIO(data)) as z:
        return {k: z[k] for k in z.files}
