"""Recover a run folder (network.pt + train_report.json) from an int8 ONNX export made
elsewhere, so that `unspin.train.loop.finalize` can re-export it here with this machine's
onnxruntime fusions.

    python tools/gpu/from_onnx.py runs/gpu2/small_d6 runs/small-rebuilt

The int8 weights are de-quantized (w = (q - zero_point) * scale), so the recovered network is
the exported one's weights on the int8 grid, not the original fp32 weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from unspin.train.encoders import resolve_encoder  # noqa: E402
from unspin.train.model import Network  # noqa: E402


def recover(onnx_path: Path, tc_head: Path, encoder: str, layers: int | None) -> Network:
    m = onnx.load(str(onnx_path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for name, arr in init.items():  # biases, LayerNorms: stored under their parameter names
        if name.startswith("net.") and not name.endswith(("_quantized", "_scale", "_zero_point")):
            state[name[4:]] = torch.from_numpy(arr.astype(np.float32))
    for name in init:  # int8 embeddings (Gather or QEmbedLayerNormalization), per tensor
        if name.startswith("net.") and name.endswith(("weight_quantized", "bias_quantized")):
            base = name[: -len("_quantized")]
            q = init[name].astype(np.float32)
            w = (q - init[base + "_zero_point"].astype(np.float32)) * init[base + "_scale"]
            state[base[4:]] = torch.from_numpy(w.astype(np.float32))
    for node in m.graph.node:  # int8 MatMul weights, per output channel; (in, out) in ONNX
        if node.op_type != "MatMulInteger" or not node.name.startswith("/net/"):
            continue
        wq = node.input[1]
        base = wq[: -len("_quantized")]
        q = init[wq].astype(np.float32)
        w = (q - init[base + "_zero_point"].astype(np.float32)) * init[base + "_scale"]
        module = node.name[len("/net/") : -len("/MatMul_quant")].replace("/", ".")
        state[module + ".weight"] = torch.from_numpy(np.ascontiguousarray(w.T, dtype=np.float32))
    attention = [n for n in m.graph.node if n.op_type == "Attention"]
    for layer, node in enumerate(attention):  # fused attention: Q, K, V packed, fp32, (in, 3h)
        w, b = init[node.input[1]], init[node.input[2]]
        h = w.shape[0]
        prefix = f"encoder.encoder.layer.{layer}.attention.self."
        for k, part in enumerate(("query", "key", "value")):
            cols = slice(k * h, (k + 1) * h)
            state[prefix + part + ".weight"] = torch.from_numpy(np.ascontiguousarray(w[:, cols].T))
            state[prefix + part + ".bias"] = torch.from_numpy(np.ascontiguousarray(b[cols]))
    with np.load(tc_head) as npz:
        for k, p in (
            ("w1", "tc1.weight"),
            ("b1", "tc1.bias"),
            ("w2", "tc2.weight"),
            ("b2", "tc2.bias"),
        ):
            state[p] = torch.from_numpy(npz[k].astype(np.float32))
    net = Network(resolve_encoder(encoder), layers=layers)
    own = net.state_dict()
    unused = ("position_ids", "pooler.dense.weight", "pooler.dense.bias")  # not in the graph
    missing = [k for k in own if k not in state and not k.endswith(unused)]
    if missing:
        raise SystemExit(f"not recovered: {missing[:8]} ({len(missing)})")
    net.load_state_dict({k: state.get(k, v) for k, v in own.items()})
    return net


def main() -> None:
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    report = json.loads((run / "train_report.json").read_text())
    cfg = report["config"]
    cfg["encoder"] = "minilm" if "minilm" in str(cfg["encoder"]) else cfg["encoder"]
    net = recover(
        run / "onnx" / "model.onnx",
        run / "onnx" / "tc_head.npz",
        cfg["encoder"],
        int(cfg.get("layers") or 0) or None,
    )
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / "network.pt")
    report["config"] = cfg
    report["recovered_from"] = str(run / "onnx" / "model.onnx")
    (out / "train_report.json").write_text(json.dumps(report, indent=1))
    print(f"{out}/network.pt recovered ({sum(p.numel() for p in net.parameters())} params)")


if __name__ == "__main__":
    main()
