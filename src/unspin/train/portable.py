"""Int8 models that compute the same numbers on every x86 CPU.

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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

Mode = Literal["u8u8", "reduce_range"]
MODES: tuple[str, ...] = ("u8u8", "reduce_range")


def _weight_inputs(model: Any) -> dict[str, tuple[str, str]]:
    """Quantized weight initializer -> (its zero point, its scale) for every MatMulInteger and
    QAttention (onnxruntime's int8 attention: weight, scale and zero point at inputs 1, 4, 7)."""
    inits = {i.name for i in model.graph.initializer}
    found: dict[str, tuple[str, str]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMulInteger" and len(node.input) >= 4:
            weight, zero = node.input[1], node.input[3]
            scale = weight[: -len("_quantized")] + "_scale"
            if not weight.endswith("_quantized"):
                continue
        elif node.op_type == "QAttention" and len(node.input) >= 8:
            weight, scale, zero = node.input[1], node.input[4], node.input[7]
        else:
            continue
        if weight not in inits or zero not in inits:
            continue
        if scale not in inits:
            raise ValueError(f"no scale initializer {scale!r} for {weight!r}")
        found[weight] = (zero, scale)
    return found


def portable_model(model: Any, mode: str) -> tuple[Any, int]:
    """Rewrite ``model`` (an onnx ModelProto, changed in place) so that its int8 MatMuls give
    the same result on every CPU; returns the model and how many weight tensors changed."""
    from onnx import numpy_helper

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    by_name = {i.name: i for i in model.graph.initializer}
    changed = 0
    for weight, (zero, scale) in _weight_inputs(model).items():
        w = numpy_helper.to_array(by_name[weight])
        z = numpy_helper.to_array(by_name[zero])
        if w.dtype != np.int8:
            continue  # already uint8 (or another format): leave it
        if np.any(z != 0):
            raise ValueError(f"{weight!r}: only symmetric int8 weights (zero point 0) are handled")
        if mode == "u8u8":
            new_w = (w.astype(np.int16) + 128).astype(np.uint8)
            new_z = np.full(z.shape, 128, dtype=np.uint8)
        else:
            new_w = np.clip(np.round(w.astype(np.float32) / 2), -64, 63).astype(np.int8)
            new_z = z
            s = numpy_helper.to_array(by_name[scale])
            by_name[scale].CopyFrom(numpy_helper.from_array((s * 2).astype(s.dtype), scale))
        by_name[weight].CopyFrom(numpy_helper.from_array(new_w, weight))
        by_name[zero].CopyFrom(numpy_helper.from_array(new_z, zero))
        changed += 1
    return model, changed


def make_portable(src: str | Path, dst: str | Path, mode: str = "u8u8") -> int:
    """Read an int8 ONNX file, write its portable form to ``dst``; returns the weights changed."""
    import onnx

    model, changed = portable_model(onnx.load(str(src)), mode)
    onnx.save(model, str(dst))
    return changed


def is_portable(path: str | Path) -> bool:
    """Whether every int8 MatMul weight of an ONNX file fits in 7 bits (or is uint8): no CPU
    saturates on it. A file with no int8 MatMul (fp32) is portable too."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    by_name = {i.name: i for i in model.graph.initializer}
    for weight in _weight_inputs(model):
        w = numpy_helper.to_array(by_name[weight])
        if w.dtype == np.int8 and (w.min() < -64 or w.max() > 63):
            return False
    return True
