"""Average several teachers' soft targets (a teacher ensemble) into one uint8 file that
``prepare.py students --targets`` takes.

    python tools/gpu/average_targets.py OUT.npz A.npz B.npz ...

Each input holds ``ID/si`` and ``ID/tech`` per article, uint8 (``common.targets_to_uint8``) or
float probabilities. Only articles in every input are kept; where a character is uncovered (NaN)
in some teachers, the others' mean is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from common import targets_from_uint8, targets_to_uint8

from unspin.train.distill import nan_mean


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {
            k: targets_from_uint8(z[k]) if z[k].dtype == np.uint8 else z[k].astype(np.float32)
            for k in z.files
        }


def average(paths: list[Path]) -> dict[str, np.ndarray]:
    sets = [load(p) for p in paths]
    keys = sorted(set.intersection(*(set(s) for s in sets)))
    out = {}
    for k in keys:
        shapes = {s[k].shape for s in sets}
        if len(shapes) != 1:
            raise SystemExit(f"{k}: shapes differ between teachers: {shapes}")
        out[k] = targets_to_uint8(nan_mean([s[k] for s in sets]))  # as `teacher = [...]` does
    return out


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out, ins = Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]
    arrays = average(ins)
    np.savez_compressed(out, **arrays)
    print(f"{out}: {len(arrays) // 2} articles averaged over {len(ins)} teachers")


if __name__ == "__main__":
    main()
