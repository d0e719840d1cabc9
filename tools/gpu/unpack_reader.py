"""Rebuild, here, the MPNet span reader that ``tools/gpu/reader_mpnet.py`` trained on the GPU
machine, then export it to int8 ONNX and score it on val like ``unspin train`` does:

    python tools/gpu/unpack_reader.py FILES_AT runs/reader_mpnet [--carry .devcarry2]

writes RUN/reader.pt (torch, fp32) and RUN/reader/ (model.onnx, model.fp32.onnx, tokenizer.json,
config.json with the val TC F1 of the int8 export); ship it with
``unspin.train.export.ship_reader('RUN/reader')``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", type=Path, help="the folder the GPU call's files came back to")
    ap.add_argument("run", type=Path, help="the run folder to write")
    ap.add_argument("--carry", type=Path, default=Path(".devcarry2"))
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/ptc"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--student",
        help="a MiniLM student of tools/gpu/reader_student.py (its run name) instead of the "
        "MPNet reader; --carry is then the students' carry folder (.devcarry6)",
    )
    args = ap.parse_args()
    import torch
    from common import copy_encoder_files, nf4_encoder
    from pack4 import unpack_state

    from unspin.corpus import load_split, load_texts_and_gold
    from unspin.segment import load_tokenizer
    from unspin.train.reader import ReaderNet, _predict, _rows, finish_reader, reader_tc_f1

    torch.set_num_threads(args.threads)
    report = json.loads((args.files / "report.json").read_text())
    parts = report["parts"][args.student] if args.student else report["parts"]
    data = b"".join((args.files / p).read_bytes() for p in parts)
    args.run.mkdir(parents=True, exist_ok=True)
    (args.run / "gpu_report.json").write_text(json.dumps(report, indent=1))
    config = report["configs"][args.student] if args.student else report["config"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.student:
            from safetensors.torch import load_file, save_file

            enc = Path(tmp) / "minilm"
            copy_encoder_files(args.carry / "minilm16", enc)
            sd = load_file(str(args.carry / "minilm16" / "model.safetensors"))
            save_file(
                {
                    k: (v.float() if v.is_floating_point() else v).contiguous()
                    for k, v in sd.items()
                },
                str(enc / "model.safetensors"),
            )
        else:
            enc = nf4_encoder(args.carry, Path(tmp) / "mpnet")
        start = {
            k: v.detach().clone()
            for k, v in ReaderNet(enc, config["max_recurrence"]).state_dict().items()
            if k.startswith("encoder.")
        }
        packed = Path(tmp) / "packed.npz"
        packed.write_bytes(data)
        with np.load(packed) as z:
            arrays = {k: z[k] for k in z.files}
        net = ReaderNet(enc, config["max_recurrence"])
        if args.student:
            from common import unpack_state as unpack_q8

            net.load_state_dict(unpack_q8(arrays, start))
        else:
            net.load_state_dict(unpack_state(arrays, start))
        net.eval()
        torch.save(net.state_dict(), args.run / "reader.pt")
        tok = load_tokenizer(enc / "tokenizer.json")
        texts, gold = load_texts_and_gold(args.corpus, load_split(args.corpus, "val"))
        rows = _rows(tok, config, texts, gold)
        f1 = reader_tc_f1(_predict(net, rows, config["pad_id"]), gold)
        best = report["runs"][args.student or report["best"]]
        print(f"rebuilt reader, torch fp32 here: val TC {f1:.4f} (GPU: {best['best_f1']:.4f})")
        rep = {
            "best_f1": f1,
            "history": best["hist"],
            "val_texts": texts,
            "val_gold": gold,
            "tokenizer_json": enc / "tokenizer.json",
        }
        config = {k: v for k, v in config.items() if k not in ("val", "history")}
        finish_reader(net, config, rep, args.run / "reader", args.threads)


if __name__ == "__main__":
    main()
