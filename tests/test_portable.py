"""Portable int8 (unspin.train.portable): exact integer products on every CPU.

The reference below is the exact integer arithmetic ONNX defines for DynamicQuantizeLinear +
MatMulInteger; onnxruntime's U8S8 kernel on CPUs without VNNI departs from it (16-bit
saturation), so these tests would fail there for a plain int8 file, and pass for a portable one
on any CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402

from unspin.train.portable import is_portable, make_portable, portable_model  # noqa: E402

K, N = 64, 16


def _fp32_model(path: Path, w: np.ndarray) -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, N])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))


@pytest.fixture()
def int8_model(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    # large weights of one sign in each column: pairs of products saturate a 16-bit sum
    w = (np.abs(rng.normal(1.0, 0.1, size=(K, N))) * np.sign(rng.normal(size=N))).astype(np.float32)
    _fp32_model(tmp_path / "fp32.onnx", w)
    out = tmp_path / "int8.onnx"
    quantize_dynamic(
        str(tmp_path / "fp32.onnx"), str(out), weight_type=QuantType.QInt8, per_channel=True
    )
    return out


def _weights(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type == "MatMulInteger")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    scale = inits[node.input[1][: -len("_quantized")] + "_scale"]
    return inits[node.input[1]], inits[node.input[3]], scale


def _exact(x: np.ndarray, path: Path) -> np.ndarray:
    """ONNX's DynamicQuantizeLinear + MatMulInteger, in exact integers."""
    w, wz, ws = _weights(path)
    scale = np.float32((max(0.0, x.max()) - min(0.0, x.min())) / 255)
    zero = np.clip(np.round(-x.min() / scale), 0, 255)
    xq = np.clip(np.round(x / scale) + zero, 0, 255).astype(np.int64)
    acc = (xq - int(zero)) @ (w.astype(np.int64) - wz.astype(np.int64))
    return acc.astype(np.float32) * (scale * ws).astype(np.float32)


def _pair_sums_overflow(x: np.ndarray, path: Path) -> bool:
    """Whether a U8S8 kernel that adds pairs of uint8 x int8 products in 16 bits (vpmaddubsw, on
    CPUs without VNNI) would saturate for this input."""
    w = _weights(path)[0].astype(np.int64)
    if _weights(path)[0].dtype != np.int8:
        return False
    scale = np.float32((max(0.0, x.max()) - min(0.0, x.min())) / 255)
    zero = np.clip(np.round(-x.min() / scale), 0, 255)
    xq = np.clip(np.round(x / scale) + zero, 0, 255).astype(np.int64)
    prods = xq[:, :, None] * w[None, :, :]  # (rows, K, N)
    pairs = prods[:, 0::2, :] + prods[:, 1::2, :]
    return bool(np.abs(pairs).max() > 32767)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("mode", ["u8u8", "reduce_range"])
def test_portable_models_compute_the_exact_integer_product(int8_model, tmp_path, mode):
    # positive activations far from the zero point: each product is near 255 x 127
    x = np.random.default_rng(1).uniform(2.0, 3.0, size=(8, K)).astype(np.float32)
    x[:, 0] = -0.01  # a zero point of 1: the uint8 values stay near 255
    dst = tmp_path / f"{mode}.onnx"
    assert make_portable(int8_model, dst, mode) == 1
    assert _pair_sums_overflow(x, int8_model)  # the plain file would saturate without VNNI
    if mode == "reduce_range":  # (uint8 weights run another kernel, with 32-bit pair sums)
        assert not _pair_sums_overflow(x, dst)
    np.testing.assert_allclose(_run(dst, x), _exact(x, dst), rtol=1e-5, atol=1e-3)


def test_u8u8_keeps_every_weight_and_reduce_range_halves_them(int8_model, tmp_path):
    w, wz, ws = _weights(int8_model)
    make_portable(int8_model, tmp_path / "u.onnx", "u8u8")
    uw, uz, us = _weights(tmp_path / "u.onnx")
    assert uw.dtype == np.uint8 and (uz == 128).all()
    assert (uw.astype(np.int16) - 128 == w).all() and (us == ws).all()
    make_portable(int8_model, tmp_path / "r.onnx", "reduce_range")
    rw, rz, rs = _weights(tmp_path / "r.onnx")
    assert rw.dtype == np.int8 and rw.min() >= -64 and rw.max() <= 63 and (rz == 0).all()
    np.testing.assert_allclose(rs, ws * 2)
    # each 7-bit weight stays within one old step (its own channel's scale) of the 8-bit one
    step = np.abs(rw.astype(np.float32) * rs - w.astype(np.float32) * ws) / ws
    assert step.max() <= 1.001 and step.mean() > 0.1  # and the rounding did change weights


def test_a_portable_model_is_left_as_it_is_and_bad_modes_are_refused(int8_model, tmp_path):
    make_portable(int8_model, tmp_path / "u.onnx", "u8u8")
    assert portable_model(onnx.load(str(tmp_path / "u.onnx")), "reduce_range")[1] == 0
    assert portable_model(onnx.load(str(tmp_path / "u.onnx")), "u8u8")[1] == 0
    assert make_portable(int8_model, tmp_path / "r.onnx") == 1  # reduce_range by default
    assert make_portable(tmp_path / "r.onnx", tmp_path / "r2.onnx") == 0  # not halved again
    assert (_weights(tmp_path / "r2.onnx")[0] == _weights(tmp_path / "r.onnx")[0]).all()
    with pytest.raises(ValueError, match="u8u8"):
        portable_model(onnx.load(str(int8_model)), "int4")


def test_is_portable_knows_onnxruntimes_own_reduce_range(tmp_path):
    rng = np.random.default_rng(2)
    _fp32_model(tmp_path / "fp32.onnx", rng.normal(size=(K, N)).astype(np.float32))
    for reduce, portable in ((True, True), (False, False)):
        out = tmp_path / f"q{reduce}.onnx"
        quantize_dynamic(
            str(tmp_path / "fp32.onnx"),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce,
        )
        assert is_portable(out) is portable
    assert is_portable(tmp_path / "fp32.onnx")  # no int8 MatMul at all


def test_a_weight_under_another_name_is_still_checked(int8_model, tmp_path):
    model = onnx.load(str(int8_model))
    node = next(n for n in model.graph.node if n.op_type == "MatMulInteger")
    old = node.input[1]
    for init in model.graph.initializer:
        if init.name == old:
            init.name = "renamed_weight"
    node.input[1] = "renamed_weight"
    onnx.save(model, str(tmp_path / "renamed.onnx"))
    assert not is_portable(tmp_path / "renamed.onnx")
    with pytest.raises(ValueError, match="scale initializer was not found"):
        make_portable(tmp_path / "renamed.onnx", tmp_path / "out.onnx")


def test_the_shipped_models_are_portable(int8_model):
    from unspin.reader import READER_DIR
    from unspin.registry import MODELS_DIR

    files = [*sorted(MODELS_DIR.glob("*/model.onnx")), READER_DIR / "model.onnx"]
    assert len(files) >= 3
    assert not is_portable(int8_model)  # the check can fail
    for path in files:
        assert is_portable(path), path
