"""Here, after a students call: rebuild each returned run's network.pt from the packed weights
(``weights.tar.part*``, see ``common.pack_state``) and unpack the reports, so that
``unspin.train.loop.finalize`` exports and tunes it on this machine.

    python tools/gpu/unpack.py FILES_AT runs/gpu3          # then, per run:
    python -c "from unspin.train.loop import finalize as f; f('runs/gpu3/small_d8', 'PTC_DIR')"

The starting weights are this machine's MiniLM rounded to fp16, exactly what the GPU run began
from (``prepare.py students`` carries MiniLM in fp16).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
from common import encoder_start, unpack_state

HERE = Path(__file__).resolve().parent


def encoder_init(layers: int, start: Path | None = None) -> dict:
    """The weights a run started from: MiniLM, or (``start``) the encoder folder
    ``prepare.py --encoder-from`` made; both as fp16, as they were carried."""
    sys.path.insert(0, str(HERE.parents[1] / "src"))
    from unspin.train.encoders import resolve_encoder

    return encoder_start(start or resolve_encoder("minilm"), layers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", type=Path, help="the call's returned files (files_at)")
    ap.add_argument("runs", type=Path, help="where the runs go, e.g. runs/gpu3")
    ap.add_argument(
        "--start",
        type=Path,
        help="the encoder folder the runs started from (CARRY/minilm16 when prepare.py was "
        "given --encoder-from); default: the pretrained MiniLM",
    )
    args = ap.parse_args()
    import torch

    args.runs.mkdir(parents=True, exist_ok=True)
    if (args.files / "reports.tgz").exists():
        with tarfile.open(args.files / "reports.tgz") as t:
            t.extractall(args.runs, filter="data")
    if not list(args.files.glob("weights.tar.part*")):
        sys.exit(
            f"{args.files}: no weights.tar.part* (if students.py fell back to *.fp16.pt.part*, "
            "cat those parts into network.pt: a plain fp16 state dict)"
        )
    parts = sorted(args.files.glob("weights.tar.part*"), key=lambda p: int(p.suffix[5:]))
    data = b"".join(p.read_bytes() for p in parts)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            name = m.name.removesuffix(".npz")
            run = args.runs / name
            rep_path = run / "train_report.json"
            rep = json.loads(rep_path.read_text())
            cfg = rep["config"]
            # the GPU machine's paths mean nothing here
            cfg.update(encoder="minilm", device="auto")
            for key in ("teacher", "unlabeled"):
                if cfg.get(key) and not str(cfg[key]).startswith("(GPU machine)"):
                    cfg[key] = f"(GPU machine) {cfg[key]}"
            rep_path.write_text(json.dumps(rep, indent=1))
            f = t.extractfile(m)
            assert f is not None
            with np.load(io.BytesIO(f.read())) as z:
                arrays = {k: z[k] for k in z.files}
            state = unpack_state(arrays, encoder_init(int(cfg.get("layers") or 0), args.start))
            torch.save(state, run / "network.pt")
            print(f"{run}/network.pt: {len(state)} tensors")


if __name__ == "__main__":
    main()
