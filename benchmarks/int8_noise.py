"""Is a change of val score noise from int8 rounding? Compares taggers against a reference with
the same int8 weights but no activation rounding.

    python benchmarks/int8_noise.py --model small [--files A.onnx B.onnx] [--batches 1,8,8p]
                                    [--score] [--corpus PTC_DIR]

The reference is the model's file with every int8 MatMul (DynamicQuantizeLinear + MatMulInteger
+ Cast + Mul) written as an fp32 MatMul on its dequantized weights, and onnxruntime's tanh GELU
(FastGelu) as the erf GELU (BiasGelu) the network was trained with: what the int8 file computes,
less the rounding of activations. For the model's file and each of ``--files`` (other files of
the same network, e.g. before a graph rewrite), at each window batch (``8p``: batches of 8
with the short last window padded, as taggers ran before round 14), prints the mean change of
P(span) = P(B) + P(I) and of the 14 technique probabilities per val token against the
reference (run one window at a time). ``--score`` also re-tunes the reference's decoding on val
(``unspin.train.export.retune``, in a temporary copy) and prints its val scores: the level the
network itself reaches, without int8 activations.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from unspin.errors import exit_on_error


def dequantized(src: Path, dst: Path) -> int:
    """Write ``src`` with fp32 MatMuls on dequantized weights and the erf GELU to ``dst``;
    returns how many int8 MatMuls it replaced."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    inits = {i.name: i for i in m.graph.initializer}
    made = {o: n for n in m.graph.node for o in n.output}
    users: dict[str, list] = {}
    for n in m.graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    replace, drop = {}, set()
    for n in m.graph.node:
        if n.op_type != "MatMulInteger":
            continue
        x = made[n.input[0]].input[0]  # the DynamicQuantizeLinear's fp32 input
        wq = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        wz = numpy_helper.to_array(inits[n.input[3]]).astype(np.float32)
        cast = users[n.output[0]][0]
        mul = users[cast.output[0]][0]  # Cast output x (activation scale x weight scales)
        scales = made[next(i for i in mul.input if i != cast.output[0])]
        ws = numpy_helper.to_array(inits[next(i for i in scales.input if i in inits)])
        name = f"{n.name or n.output[0]}_dequantized"
        m.graph.initializer.append(numpy_helper.from_array((wq - wz) * ws, name))
        replace[id(mul)] = helper.make_node("MatMul", [x, name], [mul.output[0]], name=name)
        drop |= {id(n), id(cast)}
    nodes = [replace.get(id(n), n) for n in m.graph.node if id(n) not in drop]
    for n in nodes:
        if n.op_type == "FastGelu" and n.domain == "com.microsoft":
            n.op_type = "BiasGelu" if len(n.input) > 1 and n.input[1] else "Gelu"
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.save(m, str(dst))
    return len(replace)


def probabilities(folder: Path, texts: list[str], batch: str) -> tuple[np.ndarray, np.ndarray]:
    from unspin.tagger import Tagger

    tagger = Tagger(folder, threads=2)
    tagger.batch_size = int(batch.rstrip("p"))
    tagger.pad_batches = batch.endswith("p")  # fixed-size batches, the last window padded
    outs = [tagger.outputs(t) for t in texts]
    return np.concatenate([o.si[:, 1:].sum(1) for o in outs]), np.concatenate(
        [o.tech for o in outs]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="small")
    ap.add_argument("--files", nargs="*", default=[], help="other ONNX files of the same network")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--score", action="store_true")
    ap.add_argument("--corpus", default=None)
    args = ap.parse_args()
    import onnxruntime as ort

    from unspin.corpus import find_corpus, load_split
    from unspin.registry import resolve_model

    ort.set_default_logger_severity(3)
    corpus = find_corpus(args.corpus)
    ids = load_split(corpus, "val")
    texts = []
    for i in ids:
        path = next(corpus.rglob(f"article{i}.txt"))
        with open(path, encoding="utf-8", newline="") as fh:
            texts.append(fh.read())
    folder = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "reference"
        shutil.copytree(folder, ref)
        n = dequantized(folder / "model.onnx", ref / "model.onnx")
        print(
            f"model {args.model}: reference with {n} int8 MatMuls in fp32, {len(ids)} val articles"
        )
        want = probabilities(ref, texts, "1")
        variants = [(str(folder / "model.onnx"), folder)]
        for k, f in enumerate(args.files):
            other = Path(tmp) / f"file{k}"
            shutil.copytree(folder, other)
            shutil.copy(f, other / "model.onnx")
            variants.append((f, other))
        print(f"{'file':60} {'batch':>5} {'|dP(span)|':>10} {'|dP(tech)|':>10}")
        for name, where in variants:
            for batch in args.batches.split(","):
                span, tech = probabilities(where, texts, batch)
                print(
                    f"{name[-60:]:60} {batch:>5} {np.abs(span - want[0]).mean():10.4f} "
                    f"{np.abs(tech - want[1]).mean():10.5f}",
                    flush=True,
                )
        if args.score:
            from unspin.train.export import retune

            s = retune(ref, corpus)
            print(
                f"reference re-tuned on val: SI {s['si_f1']:.4f}  TC {s['tc_f1']:.4f}  "
                f"joint {s['joint_f1']:.4f}"
            )


if __name__ == "__main__":
    exit_on_error(main)
