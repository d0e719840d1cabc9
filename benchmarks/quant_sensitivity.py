"""Which layers break under dynamic int8: quantize one layer's weight MatMuls at a time.

    python benchmarks/quant_sensitivity.py runs/base/onnx/model.fp32.onnx [--layers 12] [--by-kind]

For each layer, quantizes only that layer's projection / feed-forward MatMuls (per-channel int8,
onnxruntime's quantize_dynamic; everything else fp32) and prints the max |difference| of the
SI logits and the hidden states against fp32 on one random 128-token window. The MPNet table in
MODEL_CARD.md comes from this script; ``--by-kind`` groups the MatMuls by role across all layers
instead (attention projections, feed-forward in/out, output heads).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from unspin.errors import exit_on_error


def run(path: str, cls_id: int, sep_id: int) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(0).integers(1000, 20000, (1, 128)).astype(np.int64)
    ids[0, 0], ids[0, -1] = cls_id, sep_id  # a real window: the outliers sit on these tokens
    return sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--by-kind", action="store_true")
    args = ap.parse_args()
    graph = onnx.load(args.model, load_external_data=False).graph
    matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    if args.by_kind:
        groups = {
            "attention Q/K/V/O": ("/q/", "/k/", "/v/", "/o/"),
            "feed-forward in": ("intermediate/dense",),
            "feed-forward out": ("output/dense",),
            "output heads": ("/net/si/", "/net/tech/"),
        }
    else:
        groups = {
            f"layer {i:2d}": tuple(
                f"layer.{i}/{k}" for k in ("attention/attn/", "intermediate", "output")
            )
            for i in range(args.layers)
        }
    config = json.loads((Path(args.model).parent / "config.json").read_text(encoding="utf-8"))
    special = (int(config["cls_id"]), int(config["sep_id"]))
    ref = run(args.model, *special)
    print(f"fp32 max |SI logit| {float(np.abs(ref[0]).max()):.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        dst = str(Path(tmp) / "q.onnx")
        for name, keys in groups.items():
            # weight MatMuls only: attn/MatMul and attn/MatMul_1 multiply two activations
            keep = [
                n for n in matmuls if any(k in n for k in keys) and not n.endswith("attn/MatMul")
            ]
            keep = [n for n in keep if not n.endswith("attn/MatMul_1")]
            quantize_dynamic(
                args.model,
                dst,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=keep,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            out = run(dst, *special)
            si = float(np.abs(ref[0] - out[0]).max())
            hid = float(np.abs(ref[2] - out[2]).max())
            print(f"{name} ({len(keep)} MatMuls): SI logits {si:.2f}  hidden {hid:.3f}")


if __name__ == "__main__":
    exit_on_error(main)
