"""Rebuild a tagger that ``teacher.py`` sent back with ``SEND_WEIGHTS=1`` (int4 changes from the
NF4 start, ``pack4.py``) as a run folder here, ready for ``finalize`` (export, int8, tuning):

    python tools/gpu/unpack_tagger.py FILES_AT runs/base6 [--carry .devcarry2] [--name base_gpu]
    python -c "from unspin.train.loop import finalize; finalize('runs/base6', '../shared/data/ptc')"

FILES_AT: the folder the call's files came back to (``tagger-NAME.json``, its ``.partN`` files,
``train_report*.json``); --carry: the carry folder the call ran with (its NF4 encoder is the
start both sides share).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", type=Path, help="the folder the GPU call's files came back to")
    ap.add_argument("run", type=Path, help="the run folder to write: network.pt, train_report.json")
    ap.add_argument("--carry", type=Path, default=Path(".devcarry2"))
    ap.add_argument("--name", default="base_gpu", help="NAME the call ran with")
    args = ap.parse_args()
    import torch
    from common import nf4_encoder
    from pack4 import read_parts, unpack_state

    from unspin.train.model import Network

    report = json.loads((args.files / f"tagger-{args.name}.json").read_text())
    sfx = "" if args.name == "base_gpu" else f"-{args.name}"
    train_report = json.loads((args.files / f"train_report{sfx}.json").read_text())
    train_report["config"]["encoder"] = "mpnet"  # the GPU machine's path to its NF4 copy
    for key in ("device", "max_minutes"):
        train_report["config"].pop(key, None)
    train_report["gpu"] = report
    with tempfile.TemporaryDirectory() as tmp:
        enc = nf4_encoder(args.carry, Path(tmp) / "mpnet")
        start = {k: v for k, v in Network(enc).state_dict().items() if k.startswith("encoder.")}
        net = Network(enc)
        net.load_state_dict(unpack_state(read_parts(args.files, report["parts"]), start))
    args.run.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.run / "network.pt")
    (args.run / "train_report.json").write_text(json.dumps(train_report, indent=1))
    print(f"{args.run}/network.pt rebuilt; on the GPU machine, val {report['val_rebuilt']}")


if __name__ == "__main__":
    main()
