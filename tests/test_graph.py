"""Graph rewrites for speed (unspin.train.graph): same arithmetic, faster ops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from unspin.train.graph import int8_qkv, speed_up, unfuse_skip_layernorm  # noqa: E402
from unspin.train.portable import is_portable  # noqa: E402

D, HEADS, S = 16, 2, 6
MS = "com.microsoft"


def _run(model, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def _model(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    )


def _f(name: str, *shape) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _skip_ln_model(rng: np.random.Generator, read_mean: bool = False):
    """x -> SkipLayerNorm(x, skip, bias) -> SkipLayerNorm(without bias) -> Clip (its optional
    inputs left empty, so the graph holds "" as an input name)."""
    inits = [
        numpy_helper.from_array(rng.normal(size=D).astype(np.float32), name)
        for name in ("gamma", "beta", "bias")
    ]
    first_outputs = ["h", "mean"] if read_mean else ["h"]
    nodes = [
        helper.make_node(
            "SkipLayerNormalization",
            ["x", "skip", "gamma", "beta", "bias"],
            first_outputs,
            domain=MS,
            epsilon=1e-12,
        ),
        helper.make_node(
            "SkipLayerNormalization", ["h", "x", "gamma"], ["h2"], domain=MS, epsilon=1e-5
        ),
        helper.make_node("Clip", ["h2", "", ""], ["y"]),
    ]
    outputs = [_f("y", None, S, D)] + ([_f("mean", None, S, 1)] if read_mean else [])
    return _model(nodes, [_f("x", None, S, D), _f("skip", None, S, D)], outputs, inits)


def test_skip_layernorm_becomes_add_and_layernorm_with_the_same_outputs() -> None:
    rng = np.random.default_rng(0)
    model = _skip_ln_model(rng)
    feed = {
        "x": rng.normal(size=(3, S, D)).astype(np.float32),
        "skip": rng.normal(size=(3, S, D)).astype(np.float32),
    }
    before = _run(model, feed)[0]
    assert unfuse_skip_layernorm(model) == 2
    ops = [n.op_type for n in model.graph.node]
    assert "SkipLayerNormalization" not in ops
    assert ops.count("LayerNormalization") == 2 and ops.count("Add") == 3  # one bias add
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, feed)[0], before, atol=1e-5)
    assert unfuse_skip_layernorm(model) == 0  # nothing left to rewrite


def test_skip_layernorm_whose_mean_is_read_is_left_fused() -> None:
    model = _skip_ln_model(np.random.default_rng(1), read_mean=True)
    assert unfuse_skip_layernorm(model) == 1  # only the second one
    assert [n.op_type for n in model.graph.node].count("SkipLayerNormalization") == 1


def _attention_model(rng: np.random.Generator, layers: int = 2):
    """``layers`` fused Attention nodes in a row, with a 1-D mask index (valid lengths)."""
    nodes, inits, x = [], [], "x"
    for i in range(layers):
        w = rng.normal(scale=0.3, size=(D, 3 * D)).astype(np.float32)
        b = rng.normal(scale=0.1, size=3 * D).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, f"Attention_{i}_qkv_weight"),
            numpy_helper.from_array(b, f"Attention_{i}_qkv_bias"),
        ]
        out = f"a{i}"
        nodes.append(
            helper.make_node(
                "Attention",
                [x, f"Attention_{i}_qkv_weight", f"Attention_{i}_qkv_bias", "lengths"],
                [out],
                domain=MS,
                num_heads=HEADS,
                name=f"Attention_{i}",
            )
        )
        x = out
    lengths = helper.make_tensor_value_info("lengths", TensorProto.INT32, [None])
    return _model(nodes, [_f("x", None, None, D), lengths], [_f(x, None, None, D)], inits)


def test_int8_qkv_keeps_the_first_attention_and_approximates_the_rest() -> None:
    rng = np.random.default_rng(2)
    model = _attention_model(rng, layers=3)
    feed = {
        "x": rng.normal(size=(2, S, D)).astype(np.float32),
        "lengths": np.array([S, 4], np.int32),  # the second row is padded after 4 tokens
    }
    before = _run(model, feed)[0]
    assert int8_qkv(model, keep_fp32=1) == 2
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Attention") == 1 and ops.index("Attention") == 0
    assert ops.count("MultiHeadAttention") == 2 and ops.count("MatMulInteger") == 2
    names = {i.name for i in model.graph.initializer}
    assert "Attention_0_qkv_weight" in names  # kept, with its fp32 Attention
    assert not {"Attention_1_qkv_weight", "Attention_2_qkv_weight"} & names  # replaced
    after = _run(model, feed)[0]
    valid = np.ones((2, S), bool)
    valid[1, 4:] = False
    err = np.abs(after - before)[valid]
    assert 0 < err.max() < 0.05 * np.abs(before).max()  # int8 rounding: close, not identical


def test_int8_qkv_masks_padding_as_the_attention_did() -> None:
    """A padded row's valid tokens give the same answer as that row alone, unpadded."""
    rng = np.random.default_rng(3)
    model = _attention_model(rng, layers=2)
    int8_qkv(model, keep_fp32=0)
    row = rng.normal(size=(1, S, D)).astype(np.float32)
    padded = row.copy()
    padded[0, 4:] = -2 * row[0, :2]  # other tokens after the valid length, in the same range
    alone = _run(model, {"x": row[:, :4].copy(), "lengths": np.array([4], np.int32)})[0]
    model_s = _run(model, {"x": padded, "lengths": np.array([4], np.int32)})[0]
    # int8 scales come from the whole tensor (padding included): close, not identical
    masked_err = np.abs(model_s[0, :4] - alone[0]).max()
    unmasked = _run(model, {"x": padded, "lengths": np.array([S], np.int32)})[0]
    unmasked_err = np.abs(unmasked[0, :4] - alone[0]).max()
    assert masked_err < 0.2 < unmasked_err  # the mask is what keeps them apart


def test_speed_up_writes_a_portable_file(tmp_path: Path) -> None:
    model = _attention_model(np.random.default_rng(4), layers=2)
    onnx.save(model, str(tmp_path / "in.onnx"))
    done = speed_up(tmp_path / "in.onnx", tmp_path / "out.onnx")
    assert done == {"skip_layernorm": 0, "qkv": 1}
    assert is_portable(tmp_path / "out.onnx")  # 7-bit Q/K/V weights
    onnx.checker.check_model(onnx.load(str(tmp_path / "out.onnx")))
    assert speed_up(tmp_path / "in.onnx", tmp_path / "plain.onnx", qkv=False)["qkv"] == 0


def test_the_shipped_taggers_carry_the_rewrites_and_the_reader_does_not() -> None:
    from unspin.reader import READER_DIR
    from unspin.registry import MODELS_DIR

    files = sorted(MODELS_DIR.glob("*/model.onnx"))
    assert len(files) >= 2
    for path in files:
        ops = [n.op_type for n in onnx.load(str(path)).graph.node]
        assert "SkipLayerNormalization" not in ops, path
        assert ops.count("Attention") == 1 and ops.count("MultiHeadAttention") >= 1, path
    # the span reader keeps its fused ops: the rewrites cost it TC points (round 13)
    reader_ops = [n.op_type for n in onnx.load(str(READER_DIR / "model.onnx")).graph.node]
    assert "MultiHeadAttention" not in reader_ops and "SkipLayerNormalization" in reader_ops
