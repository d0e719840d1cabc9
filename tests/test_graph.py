"""Graph rewrites for speed (unspin.train.graph): same arithmetic, faster ops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from unspin.segment import UNPADDED_KEY  # noqa: E402
from unspin.tagger import session_backend  # noqa: E402
from unspin.train.graph import (  # noqa: E402
    drop_length_masks,
    int8_qkv,
    speed_up,
    tanh_gelu,
    unfuse_skip_layernorm,
)
from unspin.train.portable import is_portable  # noqa: E402

D, HEADS, S = 16, 2, 6
MS = "com.microsoft"


def _run(model, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def _model(nodes, inputs, outputs, inits, opset: int = 17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)]
    )


def _f(name: str, *shape) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


# -- SkipLayerNormalization -> Add + LayerNormalization ----------------------------------------


def _skip_ln_model(rng: np.random.Generator, *, read_mean: bool = False, opset: int = 17):
    """x -> SkipLayerNorm(x, skip, gamma, beta, bias) -> SkipLayerNorm(h, x, gamma) -> Clip
    (optional inputs left empty, so the graph holds "" as an input name)."""
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
            epsilon=1e-5,
        ),
        helper.make_node(
            "SkipLayerNormalization", ["h", "x", "gamma"], ["h2"], domain=MS, epsilon=1e-6
        ),
        helper.make_node("Clip", ["h2", "", ""], ["y"]),
    ]
    outputs = [_f("y", None, S, D)] + ([_f("mean", None, S, 1)] if read_mean else [])
    return _model(nodes, [_f("x", None, S, D), _f("skip", None, S, D)], outputs, inits, opset)


def _feed(rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {
        "x": (scale * rng.normal(size=(3, S, D))).astype(np.float32),
        "skip": (scale * rng.normal(size=(3, S, D))).astype(np.float32),
    }


def test_skip_layernorm_becomes_add_and_layernorm_with_the_same_outputs() -> None:
    rng = np.random.default_rng(0)
    model = _skip_ln_model(rng)
    feed = _feed(rng)
    before = _run(model, feed)[0]
    assert unfuse_skip_layernorm(model) == 2
    ops = _ops(model)
    assert "SkipLayerNormalization" not in ops
    assert ops.count("LayerNormalization") == 2 and ops.count("Add") == 3  # one bias add
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-4, atol=1e-5)
    assert unfuse_skip_layernorm(model) == 0  # nothing left to rewrite


def test_skip_layernorm_without_an_epsilon_uses_the_fused_ops_default() -> None:
    """onnxruntime's default epsilon is 1e-12: on tiny activations 1e-5 would change them."""
    rng = np.random.default_rng(11)
    gamma = numpy_helper.from_array(rng.normal(size=D).astype(np.float32), "gamma")
    node = helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma"], ["y"], domain=MS)
    model = _model([node], [_f("x", None, S, D), _f("skip", None, S, D)], [_f("y")], [gamma])
    feed = _feed(rng, scale=1e-4)
    before = _run(model, feed)[0]
    assert unfuse_skip_layernorm(model) == 1
    np.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-3, atol=1e-4)


def test_skip_layernorm_passes_on_its_sum_output() -> None:
    """Output 3 (input + skip + bias) keeps its name when a node reads it."""
    rng = np.random.default_rng(5)
    gamma = numpy_helper.from_array(rng.normal(size=D).astype(np.float32), "gamma")
    nodes = [
        helper.make_node(
            "SkipLayerNormalization",
            ["x", "skip", "gamma"],
            ["h", "", "", "sum"],
            domain=MS,
            epsilon=1e-5,
        ),
        helper.make_node("Mul", ["h", "sum"], ["y"]),
    ]
    model = _model(nodes, [_f("x", None, S, D), _f("skip", None, S, D)], [_f("y")], [gamma])
    feed = _feed(rng)
    before = _run(model, feed)[0]
    assert unfuse_skip_layernorm(model) == 1
    np.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-4, atol=1e-5)


def test_skip_layernorm_left_fused_where_the_rewrite_would_not_be_the_same() -> None:
    model = _skip_ln_model(np.random.default_rng(1), read_mean=True)
    assert unfuse_skip_layernorm(model) == 1  # the first one's mean is read: only the second
    assert _ops(model).count("SkipLayerNormalization") == 1
    old = _skip_ln_model(np.random.default_rng(1), opset=16)  # no LayerNormalization op yet
    assert unfuse_skip_layernorm(old) == 0


def test_new_names_never_clash_with_existing_ones() -> None:
    rng = np.random.default_rng(6)
    model = _skip_ln_model(rng)
    for k, node in enumerate(model.graph.node[:2]):
        node.name = "" if k == 0 else "SkipLayerNorm"  # an unnamed node beside a named one
    model.graph.node[2].output[0] = "SkipLayerNorm_sum"  # a tensor under a generated name
    model.graph.output[0].name = "SkipLayerNorm_sum"
    feed = _feed(rng)
    before = _run(model, feed)[0]
    assert unfuse_skip_layernorm(model) == 2
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-4, atol=1e-5)


# -- Attention -> int8 Q/K/V + MultiHeadAttention -----------------------------------------------


def _exact_weights(rng: np.random.Generator) -> np.ndarray:
    """Weights on the 7-bit grid the rewrite uses (each column's largest magnitude is 63 steps),
    so that with integer inputs the int8 projection is exact and only the ops differ."""
    q = rng.integers(-60, 61, size=(D, 3 * D))
    q[0] = 63
    return (q * 1e-3).astype(np.float32)


def _attention_model(
    rng: np.random.Generator,
    layers: int = 2,
    *,
    mask: str = "2d",
    exact: bool = False,
    outputs: int = 1,
    **attrs,
):
    """``layers`` fused Attention nodes in a row; ``mask`` "2d" (an int32 batch x seq input),
    "none" or "1d" (a graph input of lengths, which could also be end/start positions)."""
    nodes, inits, x = [], [], "x"
    mask_name = "" if mask == "none" else "mask"
    for i in range(layers):
        w = _exact_weights(rng) if exact else rng.normal(scale=0.3, size=(D, 3 * D))
        b = rng.normal(scale=0.1, size=3 * D)
        inits += [
            numpy_helper.from_array(np.asarray(w, np.float32), f"Attention_{i}_qkv_weight"),
            numpy_helper.from_array(b.astype(np.float32), f"Attention_{i}_qkv_bias"),
        ]
        out = f"a{i}"
        extra = [f"present{i}"] if outputs > 1 else []
        nodes.append(
            helper.make_node(
                "Attention",
                [x, f"Attention_{i}_qkv_weight", f"Attention_{i}_qkv_bias", mask_name],
                [out, *extra],
                domain=MS,
                num_heads=HEADS,
                name=f"Attention_{i}",
                **attrs,
            )
        )
        x = out
    inputs = [_f("x", None, None, D)]
    if mask == "2d":
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.INT32, [None, None]))
    elif mask == "1d":
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.INT32, [None]))
    return _model(nodes, inputs, [_f(x, None, None, D)], inits)


def _attention_feed(rng: np.random.Generator, mask: str) -> dict[str, np.ndarray]:
    """Integer inputs spanning exactly [-128, 127]: DynamicQuantizeLinear's scale is then 1 and
    its rounding exact. The second row is padded after 4 tokens."""
    x = rng.integers(-100, 100, size=(2, S, D)).astype(np.float32)
    x[0, 0, 0], x[0, 0, 1] = -128, 127
    feed = {"x": x}
    if mask == "2d":
        feed["mask"] = np.array([[1] * S, [1] * 4 + [0] * (S - 4)], np.int32)
    elif mask == "1d":
        feed["mask"] = np.array([S, 4], np.int32)
    return feed


@pytest.mark.parametrize(
    ("mask", "attrs"),
    [("2d", {}), ("none", {}), ("2d", {"scale": 0.5}), ("2d", {"mask_filter_value": -1.0})],
)
def test_multihead_attention_computes_what_the_fused_attention_did(mask: str, attrs) -> None:
    """With the projection exact, the rewritten graph gives the fused one's outputs: the same
    scale, mask and bias."""
    rng = np.random.default_rng(7)
    model = _attention_model(rng, layers=1, mask=mask, exact=True, **attrs)
    feed = _attention_feed(rng, mask)
    before = _run(model, feed)[0]
    assert int8_qkv(model, keep_fp32=0) == 1
    assert _ops(model).count("MultiHeadAttention") == 1 and "Attention" not in _ops(model)
    onnx.checker.check_model(model)
    valid = np.ones((2, S), bool) if mask == "none" else feed["mask"].astype(bool)
    after = _run(model, feed)[0]
    np.testing.assert_allclose(after[valid], before[valid], rtol=1e-4, atol=1e-4)


def test_int8_qkv_keeps_the_first_attention_and_approximates_the_rest() -> None:
    rng = np.random.default_rng(2)
    model = _attention_model(rng, layers=3)
    feed = {
        "x": rng.normal(size=(2, S, D)).astype(np.float32),
        "mask": np.array([[1] * S, [1] * 4 + [0] * (S - 4)], np.int32),
    }
    before = _run(model, feed)[0]
    assert int8_qkv(model, keep_fp32=1) == 2
    ops = _ops(model)
    assert ops.count("Attention") == 1 and ops.index("Attention") == 0
    assert ops.count("MultiHeadAttention") == 2 and ops.count("MatMulInteger") == 2
    names = {i.name for i in model.graph.initializer}
    assert "Attention_0_qkv_weight" in names  # kept, with its fp32 Attention
    assert not {"Attention_1_qkv_weight", "Attention_2_qkv_weight"} & names  # replaced
    after = _run(model, feed)[0]
    valid = feed["mask"].astype(bool)
    err = np.abs(after - before)[valid]
    assert 0 < err.max() < 0.05 * np.abs(before).max()  # int8 rounding: close, not identical


def test_int8_qkv_masks_padding() -> None:
    """A padded row's valid tokens give the same answer as that row alone, unpadded; without
    the mask they would not."""
    rng = np.random.default_rng(3)
    model = _attention_model(rng, layers=2)
    int8_qkv(model, keep_fp32=0)
    row = rng.normal(size=(1, S, D)).astype(np.float32)
    padded = row.copy()
    padded[0, 4:] = -2 * row[0, :2]  # other tokens after the valid length, in the same range
    alone = _run(model, {"x": row[:, :4].copy(), "mask": np.ones((1, 4), np.int32)})[0]
    masked = _run(model, {"x": padded, "mask": np.array([[1] * 4 + [0] * (S - 4)], np.int32)})
    unmasked = _run(model, {"x": padded, "mask": np.ones((1, S), np.int32)})[0]
    # int8 scales come from the whole tensor (padding included): close, not identical
    masked_err = np.abs(masked[0][0, :4] - alone[0]).max()
    unmasked_err = np.abs(unmasked[0, :4] - alone[0]).max()
    assert masked_err < 0.2 < unmasked_err  # the mask is what keeps them apart


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("a 1-D mask of unknown origin", {"mask": "1d"}),
        ("a present output", {"outputs": 2}),
        ("unidirectional", {"unidirectional": 1}),
        ("unequal Q/K/V widths", {"qkv_hidden_sizes": [16, 16, 8]}),
    ],
)
def test_attentions_the_rewrite_cannot_match_are_left_alone(case: str, kwargs) -> None:
    model = _attention_model(np.random.default_rng(8), layers=2, **kwargs)
    assert int8_qkv(model, keep_fp32=0) == 0, case
    assert _ops(model).count("Attention") == 2


def test_an_attention_with_past_state_is_left_alone() -> None:
    model = _attention_model(np.random.default_rng(9), layers=1)
    model.graph.node[0].input.append("past")
    assert int8_qkv(model, keep_fp32=0) == 0


def test_the_cleanup_keeps_weights_a_subgraph_still_reads() -> None:
    """Only the replaced Attention's own weights go, and not while an If branch reads them."""
    rng = np.random.default_rng(10)
    model = _attention_model(rng, layers=1)
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.ones(1, np.float32), "unused_here"))
    branch = helper.make_graph(
        [helper.make_node("Identity", ["Attention_0_qkv_bias"], ["b_out"])],
        "branch",
        [],
        [_f("b_out", 3 * D)],
    )
    g.input.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    g.node.append(
        helper.make_node("If", ["cond"], ["bias_seen"], then_branch=branch, else_branch=branch)
    )
    g.output.append(_f("bias_seen", 3 * D))
    assert int8_qkv(model, keep_fp32=0) == 1
    names = {i.name for i in g.initializer}
    assert "Attention_0_qkv_bias" in names and "unused_here" in names
    assert "Attention_0_qkv_weight" not in names
    onnx.checker.check_model(model)
    feed = _attention_feed(rng, "2d") | {"cond": np.array(True)}
    assert _run(model, feed)[1].shape == (3 * D,)


def test_speed_up_writes_a_portable_file(tmp_path: Path) -> None:
    model = _attention_model(np.random.default_rng(4), layers=2)
    onnx.save(model, str(tmp_path / "in.onnx"))
    done = speed_up(tmp_path / "in.onnx", tmp_path / "out.onnx")
    # the test model's mask is a graph input, not the lengths an embedding writes: kept
    assert done == {"skip_layernorm": 0, "qkv": 1, "masks": 0, "gelu": 0}
    assert is_portable(tmp_path / "out.onnx")  # 7-bit Q/K/V weights
    onnx.checker.check_model(onnx.load(str(tmp_path / "out.onnx")))
    assert speed_up(tmp_path / "in.onnx", tmp_path / "plain.onnx", qkv=False)["qkv"] == 0


def test_the_shipped_taggers_carry_the_rewrites_and_the_reader_does_not() -> None:
    from unspin.reader import READER_DIR
    from unspin.registry import MODELS_DIR

    files = sorted(MODELS_DIR.glob("*/model.onnx"))
    assert len(files) >= 2
    for path in files:
        ops = _ops(onnx.load(str(path)))
        assert "SkipLayerNormalization" not in ops, path
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        encoder = json.loads((path.parent / "config.json").read_text("utf-8"))["encoder"]
        if encoder == "mpnet":
            # MPNet's attention stays unfused (relative position bias): int8 Q/K/V MatMuls,
            # and the graph reads its own padding mask, so padded rows stay right
            assert "Attention" not in ops and ops.count("MatMulInteger") >= 4, path
            assert meta.get(UNPADDED_KEY) != "1", path
            continue
        assert ops.count("Attention") == 1 and ops.count("MultiHeadAttention") >= 1, path
        assert meta.get(UNPADDED_KEY) == "1", path  # read row by row when padded
    # the span reader keeps its fused ops: the rewrites cost it TC points (round 13)
    reader_ops = _ops(onnx.load(str(READER_DIR / "model.onnx")))
    assert "MultiHeadAttention" not in reader_ops and "SkipLayerNormalization" in reader_ops


# -- drop_length_masks: no key padding mask, never padded ----------------------------------------

V = 50


def _embedded_model(rng: np.random.Generator, layers: int = 2):
    """``input_ids``/``attention_mask`` (int64, as a tagger file) -> EmbedLayerNormalization,
    whose second output (the valid lengths) masks ``layers`` fused Attentions."""
    inits = [
        numpy_helper.from_array(rng.normal(size=(V, D)).astype(np.float32), "word"),
        numpy_helper.from_array(rng.normal(size=(S, D)).astype(np.float32), "pos"),
        numpy_helper.from_array(np.ones(D, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(D, np.float32), "beta"),
    ]
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32),
        helper.make_node(
            "EmbedLayerNormalization",
            ["ids32", "", "word", "pos", "", "gamma", "beta", "mask32"],
            ["x", "lengths"],
            domain=MS,
        ),
    ]
    x = "x"
    for i in range(layers):
        inits += [
            numpy_helper.from_array(
                rng.normal(scale=0.3, size=(D, 3 * D)).astype(np.float32), f"w{i}"
            ),
            numpy_helper.from_array(rng.normal(scale=0.1, size=3 * D).astype(np.float32), f"b{i}"),
        ]
        nodes.append(
            helper.make_node(
                "Attention", [x, f"w{i}", f"b{i}", "lengths"], [f"a{i}"], domain=MS, num_heads=HEADS
            )
        )
        x = f"a{i}"
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, [None, None])
        for n in ("input_ids", "attention_mask")
    ]
    return _model(nodes, inputs, [_f(x, None, None, D)], inits)


def _ids(rng: np.random.Generator, rows: int = 2, length: int = S) -> dict[str, np.ndarray]:
    ids = rng.integers(0, V, size=(rows, length)).astype(np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _mask_inputs(model) -> list[str]:
    slot = {"Attention": 3, "MultiHeadAttention": 4}
    return [
        n.input[slot[n.op_type]] if len(n.input) > slot[n.op_type] else ""
        for n in model.graph.node
        if n.op_type in slot
    ]


def test_drop_length_masks_gives_the_same_outputs_on_unpadded_rows() -> None:
    rng = np.random.default_rng(11)
    model = _embedded_model(rng, layers=3)
    assert int8_qkv(model, keep_fp32=1) == 2  # Attention, then two MultiHeadAttentions
    feed = _ids(rng)
    before = _run(model, feed)[0]
    assert _mask_inputs(model) == ["lengths"] * 3
    assert drop_length_masks(model) == 3
    assert _mask_inputs(model) == [""] * 3
    assert {p.key: p.value for p in model.metadata_props}[UNPADDED_KEY] == "1"
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-5, atol=1e-5)


def test_drop_length_masks_keeps_other_masks_and_other_metadata() -> None:
    model = _attention_model(np.random.default_rng(12), layers=2)  # mask: a 2-D graph input
    helper.set_model_props(model, {"producer_note": "kept"})
    assert drop_length_masks(model) == 0
    assert _mask_inputs(model) == ["mask", "mask"]
    assert {p.key: p.value for p in model.metadata_props} == {"producer_note": "kept"}
    model = _embedded_model(np.random.default_rng(12))
    helper.set_model_props(model, {"producer_note": "kept"})
    drop_length_masks(model)
    assert {p.key: p.value for p in model.metadata_props} == {
        "producer_note": "kept",
        UNPADDED_KEY: "1",
    }


def test_a_file_without_masks_runs_a_padded_batch_row_by_row(tmp_path: Path) -> None:
    """What Tagger does with such a file: a padded row's tokens get the answer the row alone
    gets; fed straight to onnxruntime they attend to the padding."""
    rng = np.random.default_rng(13)
    model = _embedded_model(rng)
    drop_length_masks(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = _ids(rng)
    feed["attention_mask"][1, 3:] = 0
    alone = sess.run(None, {k: v[1:, :3] for k, v in feed.items()})[0]
    (out,) = session_backend(sess)(feed["input_ids"], feed["attention_mask"])
    np.testing.assert_allclose(out[1, :3], alone[0], rtol=1e-5, atol=1e-5)
    assert not out[1, 3:].any()  # padding: zeros
    straight = sess.run(None, feed)[0]
    assert np.abs(straight[1, :3] - alone[0]).max() > 1e-2
    np.testing.assert_allclose(out[0], straight[0], rtol=1e-5, atol=1e-5)  # the full row


def test_tanh_gelu_approximates_the_erf_gelu_within_5e_4() -> None:
    x = np.linspace(-6, 6, 4001, dtype=np.float32).reshape(1, -1, 1)
    bias = np.array([0.25], np.float32)
    nodes = [
        helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain=MS),
        helper.make_node("Gelu", ["x"], ["z"], domain=MS),
        helper.make_node("Relu", ["x"], ["r"]),  # other ops stay
    ]
    model = _model(
        nodes,
        [_f("x", 1, None, 1)],
        [_f(o, 1, None, 1) for o in "yzr"],
        [numpy_helper.from_array(bias, "bias")],
    )
    before = _run(model, {"x": x})
    assert tanh_gelu(model) == 2
    assert _ops(model) == ["FastGelu", "FastGelu", "Relu"]
    onnx.checker.check_model(model)
    after = _run(model, {"x": x})
    for b, a in zip(before, after, strict=True):
        err = np.abs(a - b).max()
        assert err < 5e-4
    assert np.abs(after[0] - before[0]).max() > 1e-4  # an approximation, not the same function
    assert tanh_gelu(model) == 0


def test_window_batch_follows_the_file_unless_the_config_says() -> None:
    """Files from before round 14 (a padding mask, no key in the config) keep the padded
    batches of 8 their decoding was tuned with; rewritten ones run a window at a time."""
    from unspin.tagger import window_batching

    rng = np.random.default_rng(14)
    old = _embedded_model(rng)
    new = _embedded_model(rng)
    drop_length_masks(new)
    sessions = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (old, new)
    ]
    assert [window_batching({}, s) for s in sessions] == [(8, True), (1, False)]
    assert [window_batching({"window_batch": 4}, s) for s in sessions] == [(4, False)] * 2
