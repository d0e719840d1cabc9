"""Int8 models whose integer products are exact on every x86 CPU.

onnxruntime's dynamic int8 MatMul multiplies uint8 activations by int8 weights ("U8S8"). On
CPUs without VNNI (AVX2, and AVX-512 without VNNI) its kernel adds each pair of products in
16 bits with saturation (``vpmaddubsw``), so the result differs from the exact integer product
whenever a pair sums past 32,767; with VNNI (``vpdpbusd``) the sum is exact. The same model file
therefore gives different span probabilities, and different val scores, on different machines.

``make_portable`` rewrites a quantized model so that no CPU saturates:

- ``"u8u8"``: weight ``w`` (int8, zero point 0) becomes ``w + 128`` (uint8, zero point 128).
  Lossless: the integer products are the exact ones VNNI computes for the int8 file. onnxruntime
  runs U8U8 MatMuls with 16-bit products added in 32 bits, which cannot saturate.
- ``"reduce_range"``: weights rescaled to 7 bits (``round(w / 2)``, scale x2), onnxruntime's own
  fix for non-VNNI CPUs (``reduce_range=True``): a pair of products stays under 32,767. It keeps
  the fast U8S8 kernel but adds a rounding step to every weight.

Either way the int8 MatMuls compute the same integers on every CPU. The fp32 parts of the graph
(attention, layer norms, GELU) still run kernels written per instruction set, whose sums can
differ in the last bits, as any fp32 model's do; the 7-bit files were scored on a VNNI CPU only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

Mode = Literal["u8u8", "reduce_range"]
MODES: tuple[str, ...] = ("u8u8", "reduce_range")


# the ops whose int8 weight input could saturate: (weight input, weight zero point input)
_WEIGHT_INPUTS = {"MatMulInteger": (1, 3), "QAttention": (1, 7)}
# 2 x 255 x 64 = 32,640: a pair of uint8 x int8 products within [-64, 64] fits in 16 bits
LIMIT = 64


def _weights(model: Any) -> dict[str, tuple[str | None, str | None]]:
    """Every initializer that is the weight input of a MatMulInteger or QAttention -> (its zero
    point initializer, its scale initializer), None where there is none or it cannot be found
    (MatMulInteger's scale is found by onnxruntime's naming: "X_quantized" -> "X_scale";
    QAttention's is its input 4)."""
    inits = {i.name for i in model.graph.initializer}
    found: dict[str, tuple[str | None, str | None]] = {}
    for node in model.graph.node:
        if node.op_type not in _WEIGHT_INPUTS:
            continue
        w_at, z_at = _WEIGHT_INPUTS[node.op_type]
        if len(node.input) <= w_at or node.input[w_at] not in inits:
            continue
        weight = node.input[w_at]
        zero = node.input[z_at] if len(node.input) > z_at and node.input[z_at] in inits else None
        if node.op_type == "QAttention":
            scale: str | None = node.input[4] if len(node.input) > 4 else None
        else:
            scale = (
                weight[: -len("_quantized")] + "_scale" if weight.endswith("_quantized") else None
            )
        found[weight] = (zero, scale if scale in inits else None)
    return found


def portable_model(model: Any, mode: str) -> tuple[Any, int]:
    """Rewrite ``model`` (an onnx ModelProto, changed in place) so that no CPU saturates on its
    int8 MatMuls; returns the model and how many weight tensors changed. Weights already uint8,
    or already within 7 bits for ``"reduce_range"``, are left as they are (so running it twice
    changes nothing more)."""
    from onnx import numpy_helper

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    by_name = {i.name: i for i in model.graph.initializer}
    changed = 0
    for weight, (zero, scale) in _weights(model).items():
        w = numpy_helper.to_array(by_name[weight])
        if w.dtype != np.int8:
            continue  # already uint8 (or another format): leave it
        if mode == "reduce_range" and w.min() >= -LIMIT and w.max() <= LIMIT:
            continue  # already 7 bits
        z = numpy_helper.to_array(by_name[zero]) if zero else None
        if zero is None or z is None or np.any(z != 0):
            raise ValueError(
                f"{weight!r}: only int8 weights with a zero point initializer of 0 are handled"
            )
        if mode == "u8u8":
            new_w = (w.astype(np.int16) + 128).astype(np.uint8)
            new_z = np.full(z.shape, 128, dtype=np.uint8)
        else:
            if scale is None:
                raise ValueError(f"{weight!r}: its scale initializer was not found")
            new_w = np.clip(np.round(w.astype(np.float32) / 2), -64, 63).astype(np.int8)
            new_z = z
            s = numpy_helper.to_array(by_name[scale])
            by_name[scale].CopyFrom(numpy_helper.from_array((s * 2).astype(s.dtype), scale))
        by_name[weight].CopyFrom(numpy_helper.from_array(new_w, weight))
        by_name[zero].CopyFrom(numpy_helper.from_array(new_z, zero))
        changed += 1
    return model, changed


def make_portable(src: str | Path, dst: str | Path, mode: str = "reduce_range") -> int:
    """Read an int8 ONNX file, write its portable form to ``dst``; returns the weights changed."""
    import onnx

    model, changed = portable_model(onnx.load(str(src)), mode)
    onnx.save(model, str(dst))
    return changed


def is_portable(path: str | Path) -> bool:
    """Whether every int8 weight of an ONNX file's MatMulInteger and QAttention nodes lies in
    [-64, 64] (or is uint8): no CPU saturates on it. A file with no int8 MatMul is portable."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    by_name = {i.name: i for i in model.graph.initializer}
    for weight in _weights(model):
        w = numpy_helper.to_array(by_name[weight])
        if w.dtype == np.int8 and (w.min() < -LIMIT or w.max() > LIMIT):
            return False
    return True
