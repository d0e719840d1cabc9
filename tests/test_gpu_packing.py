"""tools/gpu/medium.py's packing: what travels to and from the GPU machine (64 MiB a call)
must come back as the same network, up to the stated rounding."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

GPU_TOOLS = Path(__file__).resolve().parents[1] / "tools" / "gpu"
sys.path.insert(0, str(GPU_TOOLS))
medium = pytest.importorskip("medium")

WE = medium.WE
LAYER = "encoder.encoder.layer.0.output.dense.weight"


def _state(rng: np.random.Generator) -> dict:
    return {
        WE: torch.from_numpy(rng.normal(0, 0.05, (1024, 64)).astype(np.float32)),
        LAYER: torch.from_numpy(rng.normal(0, 0.05, (256, 256)).astype(np.float32)),
        "encoder.embeddings.LayerNorm.weight": torch.ones(64),
        "si.weight": torch.from_numpy(rng.normal(0, 0.1, (3, 64)).astype(np.float32)),
        "encoder.embeddings.position_ids": torch.arange(8),
    }


def test_nf4_round_trip_keeps_each_weight_within_its_group_step() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.05, (128, 64)).astype(np.float32)
    a[3] = 0.0  # an all-zero group stays zero (no NaN from a zero scale)
    q, s = medium.nf4_pack(a)
    back = medium.nf4_unpack(q, s, a.shape)
    assert q.nbytes == a.size // 2
    assert np.all(back[3] == 0.0)
    step = np.abs(a).max(1, keepdims=True) * 0.31  # widest gap between NF4 levels / 2 < 0.31
    assert np.all(np.abs(back - a) <= step + 1e-7)
    assert np.corrcoef(a.ravel(), back.ravel())[0, 1] > 0.99


def test_student_pack_round_trip_and_unused_rows_keep_the_start() -> None:
    rng = np.random.default_rng(1)
    start = _state(rng)
    rows = np.array([0, 5, 17, 300], dtype=np.int32)
    trained = {k: v.clone() for k, v in start.items()}
    trained[LAYER] += torch.from_numpy(rng.normal(0, 1e-3, (256, 256)).astype(np.float32))
    trained[WE][torch.from_numpy(rows.astype(np.int64))] += 1e-3
    trained["si.weight"] += 0.01
    arrays = medium.pack_student(trained, start, rows)
    assert arrays[f"q8::{LAYER}"].dtype == np.int8
    assert arrays[f"q4::{WE}"].nbytes == len(rows) * 64 // 2  # int4: only the used rows
    back = medium.unpack_student(arrays, start, rows)
    assert set(back) == set(trained)
    # int8 a row: at most half a step (the row's largest change / 127 / 2) off
    change = (trained[LAYER] - start[LAYER]).abs().amax(1, keepdim=True)
    assert bool(((back[LAYER] - trained[LAYER]).abs() <= change / 254 * 1.01 + 1e-9).all())
    assert float((back[WE][rows] - trained[WE][rows]).abs().max()) <= 1e-3 / 7
    unused = np.setdiff1d(np.arange(1024), rows)
    assert torch.equal(back[WE][unused], start[WE][unused])
    assert torch.allclose(back["si.weight"], trained["si.weight"], atol=1e-3)
    ids = "encoder.embeddings.position_ids"
    assert torch.equal(back[ids], start[ids])


def test_rows_that_stayed_behind_come_back_from_the_original_tagger(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    original = torch.from_numpy(rng.normal(0, 0.05, (1024, 64)).astype(np.float32))
    torch.save({WE: original}, tmp_path / "network.pt")
    rows = np.array([1, 2, 900], dtype=np.int32)
    trained = torch.zeros_like(original)  # unused rows are zero on the GPU machine
    trained[torch.from_numpy(rows.astype(np.int64))] = 1.0
    state = {WE: trained}
    assert medium.restore_rows(state, rows, tmp_path / "network.pt") == 1024 - 3
    unused = torch.from_numpy(np.setdiff1d(np.arange(1024), rows))
    assert torch.equal(state[WE][unused], original[unused])
    assert bool((state[WE][torch.from_numpy(rows.astype(np.int64))] == 1.0).all())
