"""Graph rewrites that make an exported tagger faster on CPU (``export`` applies them last).

After onnxruntime's BERT optimizer and int8 quantization, four parts of the graph still ran
slower than they need to on 2 CPU cores (``python benchmarks/onnx_kernels.py FILE --threads 1
--profile``, rounds 13 and 14, docs/experiments.md):

- ``SkipLayerNormalization`` (residual add + LayerNorm, one fused op): 13% of ``small``'s run
  time, about five times what the same work costs as the standard ``Add`` and
  ``LayerNormalization`` ops. ``unfuse_skip_layernorm`` writes it as those. The arithmetic is
  the same up to fp32 rounding (1e-6 here; downstream int8 rounding can turn that into a few
  thousandths of a span probability).
- the fused fp32 ``Attention``, whose Q/K/V projection is most of its work and was not
  quantized (onnxruntime's int8 ``QAttention`` ran slower on an AVX2 CPU). ``int8_qkv``
  writes it as a 7-bit int8 MatMul (the kernel every other MatMul uses, exact on every CPU:
  ``unspin.train.portable``) followed by onnxruntime's ``MultiHeadAttention`` on the
  projected Q, K and V. The first layer keeps its fp32 Attention: its input is the embedding
  LayerNorm's output, which int8 moved the most (``keep_fp32``).
- the key padding mask itself (round 14): onnxruntime's CPU attention kernels are faster
  without one (``drop_length_masks``). ``Tagger`` never pads a batch for such a file
  (``segment.uniform_batches``), and runs a padded one row by row
  (``tagger.session_backend``); onnxruntime fed padded rows directly would let them attend to
  the padding.
- the erf GELU, as its tanh approximation (``tanh_gelu``, round 14).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unspin.segment import UNPADDED_KEY

# 7-bit per-column weights, as unspin.train.portable's LIMIT allows: no CPU saturates
_WEIGHT_MAX = 63


def _opset(model: Any, domain: str = "") -> int:
    for imp in model.opset_import:
        if imp.domain in (domain, "ai.onnx" if domain == "" else domain):
            return int(imp.version)
    return 0


def _graph_used(graph: Any) -> set[str]:
    """Every tensor name a node of ``graph``, or of a subgraph (If/Loop/Scan bodies), reads, and
    the graph's outputs."""
    from onnx import AttributeProto

    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(i for i in node.input if i)
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                names |= _graph_used(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    names |= _graph_used(sub)
    return names


def _used(model: Any) -> set[str]:
    return _graph_used(model.graph)


def _names(model: Any) -> set[str]:
    """Every node and tensor name of the main graph: new names must avoid them all."""
    g = model.graph
    taken = {n.name for n in g.node} | {i.name for i in g.initializer}
    taken |= {o for n in g.node for o in n.output} | {i for n in g.node for i in n.input}
    return taken | {v.name for v in (*g.input, *g.output, *g.value_info)}


def _fresh(base: str, taken: set[str], suffixes: tuple[str, ...]) -> str:
    """A prefix ``base`` (or ``base_2``, ``base_3``, ...) such that no ``prefix + suffix`` is
    taken; the names it makes are then marked taken."""
    prefix, k = base, 1
    while any(prefix + sfx in taken for sfx in suffixes) or prefix in taken:
        k += 1
        prefix = f"{base}_{k}"
    taken.add(prefix)
    taken.update(prefix + sfx for sfx in suffixes)
    return prefix


def unfuse_skip_layernorm(model: Any) -> int:
    """Rewrite every ``SkipLayerNormalization`` of ``model`` (changed in place) as ``Add``
    (input + skip, + bias when it has one) and ``LayerNormalization``; returns how many. Nodes
    whose mean or inverse-variance outputs are read, and models below opset 17 (no
    ``LayerNormalization``), are left as they are."""
    from onnx import helper

    if _opset(model) < 17:
        return 0
    used, taken = _used(model), _names(model)
    nodes, changed = [], 0
    for node in model.graph.node:
        outs = list(node.output) + [""] * 4
        if node.op_type != "SkipLayerNormalization" or any(o and o in used for o in outs[1:3]):
            nodes.append(node)
            continue
        eps = [helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"]
        ins = list(node.input) + [""] * 5
        x, skip, gamma, beta, bias = ins[:5]
        name = _fresh(
            node.name or "SkipLayerNorm",
            taken,
            ("_sum", "_sum0", "_add", "_addbias", "_ln"),
        )
        # the sum before the LayerNorm: output 3 of the fused op, when something reads it
        total = outs[3] if outs[3] and outs[3] in used else f"{name}_sum"
        if bias:
            nodes.append(helper.make_node("Add", [x, skip], [f"{name}_sum0"], name=f"{name}_add"))
            nodes.append(
                helper.make_node("Add", [f"{name}_sum0", bias], [total], name=f"{name}_addbias")
            )
        else:
            nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{name}_add"))
        ln_inputs = [total, gamma] + ([beta] if beta else [])
        nodes.append(
            helper.make_node(
                "LayerNormalization",
                ln_inputs,
                [outs[0]],
                axis=-1,
                epsilon=float(eps[0]) if eps else 1e-12,
                name=f"{name}_ln",
            )
        )
        changed += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return changed


_MASK_MAKERS = ("EmbedLayerNormalization", "QEmbedLayerNormalization")


def _ranks(model: Any) -> dict[str, int]:
    """The rank of every tensor whose shape the model declares (inputs, value_info)."""
    g = model.graph
    return {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in (*g.input, *g.value_info, *g.output)
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")
    }


def _mask_ok(mask: str, made_by: dict[str, tuple[str, int]], ranks: dict[str, int]) -> bool:
    """A mask MultiHeadAttention reads as the Attention did: none, the valid lengths that
    (Q)EmbedLayerNormalization writes (its output 1), or a declared 2-D or 3-D mask. A 1-D mask
    of unknown origin may hold end and start positions (2 x batch), which MultiHeadAttention
    refuses; 4-D masks differ between the two ops."""
    if not mask:
        return True
    op, index = made_by.get(mask, ("", -1))
    if op in _MASK_MAKERS and index == 1:
        return True
    return ranks.get(mask) in (2, 3)


def _plain_attention(
    node: Any, inits: dict[str, Any], made_by: dict[str, tuple[str, int]], ranks: dict[str, int]
) -> bool:
    """An Attention node this rewrite handles: constant fp32 weights and bias, equal Q/K/V
    widths, a mask MultiHeadAttention reads the same way, no past state, no extra bias, no
    output but the attention's own (not ``present``), not unidirectional."""
    from onnx import helper

    ins = list(node.input)
    if len(ins) < 3 or ins[1] not in inits or ins[2] not in inits:
        return False
    if any(i for i in ins[4:]):  # past, attention_bias, past_sequence_length, ...
        return False
    if any(o for o in node.output[1:]):  # present: MultiHeadAttention's outputs differ
        return False
    if not _mask_ok(ins[3] if len(ins) > 3 else "", made_by, ranks):
        return False
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("unidirectional", 0) or attrs.get("do_rotary", 0):
        return False
    sizes = attrs.get("qkv_hidden_sizes")
    return not sizes or len(set(sizes)) == 1


def _quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column int8 within 7 bits: (weights, scales)."""
    scale = np.abs(w).max(axis=0) / _WEIGHT_MAX
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale), -_WEIGHT_MAX - 1, _WEIGHT_MAX).astype(np.int8)
    return q, scale.astype(np.float32)


def int8_qkv(model: Any, *, keep_fp32: int = 1) -> int:
    """Rewrite each fused fp32 ``Attention`` of ``model`` (changed in place) after the first
    ``keep_fp32`` as a 7-bit int8 Q/K/V projection (DynamicQuantizeLinear, MatMulInteger,
    Cast, Mul: the pattern onnxruntime fuses into its int8 MatMul kernel) + ``Split`` +
    ``MultiHeadAttention`` (bias and key padding mask as the Attention had them); returns how
    many were rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    made_by = {o: (n.op_type, k) for n in model.graph.node for k, o in enumerate(n.output)}
    ranks, taken = _ranks(model), _names(model)
    suffixes = tuple(
        "_" + sfx
        for sfx in (
            *("qkv_quantized", "qkv_zero_point", "qkv_scale", "qkv_bias", "qkv_split"),
            *("xq", "xs", "xz", "dql", "qkv_int", "matmul", "qkv_f", "cast", "qkv_s"),
            *("mulscale", "qkv", "mul", "q", "k", "v", "split", "mha"),
        )
    )
    nodes, changed, seen, replaced = [], 0, 0, set()
    for node in model.graph.node:
        if node.op_type != "Attention" or node.domain != "com.microsoft":
            nodes.append(node)
            continue
        seen += 1
        if seen <= keep_fp32 or not _plain_attention(node, inits, made_by, ranks):
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, w_name, b_name = node.input[:3]
        mask = node.input[3] if len(node.input) > 3 else ""
        w = numpy_helper.to_array(inits[w_name]).astype(np.float32)
        bias = numpy_helper.to_array(inits[b_name]).astype(np.float32)
        q, scale = _quantize_columns(w)
        width = w.shape[1] // 3
        # new names clash with none (the optimizer names weights "Attention_1_qkv_...")
        p = _fresh(f"{node.name or 'Attention'}_i8", taken, suffixes)
        replaced |= {w_name, b_name}
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(q, f"{p}_qkv_quantized"),
                numpy_helper.from_array(np.zeros(w.shape[1], np.int8), f"{p}_qkv_zero_point"),
                numpy_helper.from_array(scale, f"{p}_qkv_scale"),
                numpy_helper.from_array(bias, f"{p}_qkv_bias"),
                numpy_helper.from_array(np.array([width] * 3, np.int64), f"{p}_qkv_split"),
            ]
        )
        mha_attrs = {"num_heads": int(attrs["num_heads"])}
        for key in ("scale", "mask_filter_value"):
            if key in attrs:
                mha_attrs[key] = attrs[key]
        nodes += [
            helper.make_node(
                "DynamicQuantizeLinear", [x], [f"{p}_xq", f"{p}_xs", f"{p}_xz"], name=f"{p}_dql"
            ),
            helper.make_node(
                "MatMulInteger",
                [f"{p}_xq", f"{p}_qkv_quantized", f"{p}_xz", f"{p}_qkv_zero_point"],
                [f"{p}_qkv_int"],
                name=f"{p}_matmul",
            ),
            helper.make_node(
                "Cast", [f"{p}_qkv_int"], [f"{p}_qkv_f"], to=TensorProto.FLOAT, name=f"{p}_cast"
            ),
            helper.make_node(
                "Mul", [f"{p}_xs", f"{p}_qkv_scale"], [f"{p}_qkv_s"], name=f"{p}_mulscale"
            ),
            helper.make_node("Mul", [f"{p}_qkv_f", f"{p}_qkv_s"], [f"{p}_qkv"], name=f"{p}_mul"),
            helper.make_node(
                "Split",
                [f"{p}_qkv", f"{p}_qkv_split"],
                [f"{p}_q", f"{p}_k", f"{p}_v"],
                axis=2,
                name=f"{p}_split",
            ),
            helper.make_node(
                "MultiHeadAttention",
                [f"{p}_q", f"{p}_k", f"{p}_v", f"{p}_qkv_bias", mask],
                list(node.output),
                domain="com.microsoft",
                name=f"{p}_mha",
                **mha_attrs,
            ),
        ]
        changed += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    # drop the replaced Attentions' fp32 weights, unless something else still reads them
    dropped = replaced - _used(model)
    for init in [i for i in model.graph.initializer if i.name in dropped]:
        model.graph.initializer.remove(init)
    for value in [v for v in model.graph.input if v.name in dropped]:
        model.graph.input.remove(value)
    return changed


def drop_length_masks(model: Any) -> int:
    """Remove the key padding mask from every ``Attention`` and ``MultiHeadAttention`` of
    ``model`` (changed in place) that reads the valid lengths (Q)EmbedLayerNormalization
    writes; returns how many. Without a mask onnxruntime's CPU kernels take their faster path
    (``MultiHeadAttention`` 84 -> 60 ms per 8 x 256 batch in ``small``, round 14), and the
    model is then only right for unpadded rows: when it changed a node it marks the model
    with ``UNPADDED_KEY`` = "1", and ``Tagger`` runs a padded batch row by row (it does not
    pad such a file anyway: ``segment.uniform_batches``)."""
    from onnx import helper

    made_by = {o: (n.op_type, k) for n in model.graph.node for k, o in enumerate(n.output)}
    changed = 0
    for node in model.graph.node:
        if node.domain != "com.microsoft" or node.op_type not in _MASK_SLOT:
            continue
        slot = _MASK_SLOT[node.op_type]
        if len(node.input) <= slot or not node.input[slot]:
            continue
        op, index = made_by.get(node.input[slot], ("", -1))
        if op not in _MASK_MAKERS or index != 1:
            continue  # a mask of another kind says more than where the padding starts
        node.input[slot] = ""
        while node.input and not node.input[-1]:
            node.input.pop()
        changed += 1
    if changed:
        helper.set_model_props(
            model, {**{p.key: p.value for p in model.metadata_props}, UNPADDED_KEY: "1"}
        )
    return changed


# where Attention and MultiHeadAttention read their mask
_MASK_SLOT = {"Attention": 3, "MultiHeadAttention": 4}


def tanh_gelu(model: Any) -> int:
    """Write onnxruntime's erf GELU ops (``BiasGelu``, ``Gelu``) of ``model`` (changed in place)
    as ``FastGelu``, its tanh approximation, with the same inputs; returns how many. The two
    functions differ by at most 5e-4 (at x = +-2.7); ``FastGelu`` is 2% faster in ``small``
    (round 14)."""
    changed = 0
    for node in model.graph.node:
        if node.domain == "com.microsoft" and node.op_type in ("BiasGelu", "Gelu"):
            node.op_type = "FastGelu"
            changed += 1
    return changed


def speed_up(
    src: str | Path,
    dst: str | Path,
    *,
    qkv: bool = True,
    masks: bool = True,
    gelu: bool = True,
) -> dict[str, int]:
    """Read an exported ONNX file, apply ``unfuse_skip_layernorm``, (with ``qkv``) ``int8_qkv``,
    (with ``masks``) ``drop_length_masks`` and (with ``gelu``) ``tanh_gelu``, write it to
    ``dst``; returns how many nodes each rewrote. A file rewritten before is left as it was
    but for the rewrites it did not have yet."""
    import onnx

    model = onnx.load(str(src))
    done = {"skip_layernorm": unfuse_skip_layernorm(model)}
    done["qkv"] = int8_qkv(model) if qkv else 0
    done["masks"] = drop_length_masks(model) if masks else 0
    done["gelu"] = tanh_gelu(model) if gelu else 0
    onnx.save(model, str(dst))
    return done
