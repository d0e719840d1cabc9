"""Export the trained network to ONNX, quantize it to int8, and check the accuracy cost on val."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unspin.errors import ModelError
from unspin.evaluate import evaluate
from unspin.lexical import LexicalClassifier
from unspin.segment import save_plain_tokenizer
from unspin.tagger import Tagger, session_backend, window_batching
from unspin.train.graph import speed_up
from unspin.train.model import Network
from unspin.train.portable import make_portable

__all__ = ["add_lexical", "export", "retune", "ship", "ship_reader"]


class _Graph(torch.nn.Module):
    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        return self.net(input_ids, attention_mask)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def export(
    net: Network,
    config: dict[str, Any],
    tokenizer_json: Path,
    out: Path,
    val_texts: dict[str, str] | None = None,
    val_gold: dict[str, list] | None = None,
    *,
    quantize: bool = True,
    lexical: LexicalClassifier | None = None,
) -> Path:
    """Write ``out/`` = model.onnx (int8) + tc_head.npz + tokenizer.json + config.json (+
    lexical.npz, the lexical span classifier, when given)."""
    out.mkdir(parents=True, exist_ok=True)
    net = net.float().eval()
    # eager attention exports the plain MatMul/Softmax pattern that onnxruntime fuses into its
    # Attention kernel; the sdpa export adds Where/IsNaN masking that cost 20% of the run time
    enc_cfg = net.encoder.config
    attn_impl = getattr(enc_cfg, "_attn_implementation", None)
    enc_cfg._attn_implementation = "eager"
    ids = torch.full((2, 16), int(config["pad_id"]), dtype=torch.long)
    ids[:, 0] = int(config["cls_id"])
    mask = torch.ones_like(ids)
    fp32 = out / "model.fp32.onnx"
    torch.onnx.export(
        _Graph(net),
        (ids, mask),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["si_logits", "tech_logits", "hidden"],
        dynamic_axes={
            n: {0: "batch", 1: "seq"}
            for n in ("input_ids", "attention_mask", "si_logits", "tech_logits", "hidden")
        },
        opset_version=17,
        dynamo=False,
    )
    enc_cfg._attn_implementation = attn_impl
    heads, hidden = int(enc_cfg.num_attention_heads), int(enc_cfg.hidden_size)
    np.savez(out / "tc_head.npz", **net.tc_head_arrays())  # type: ignore[arg-type]
    save_plain_tokenizer(tokenizer_json, out / "tokenizer.json")
    if lexical is not None:
        lexical.save(out / "lexical.npz")
    else:  # never one left from an earlier export into this folder
        (out / "lexical.npz").unlink(missing_ok=True)
    # a window at a time: see unspin.tagger.window_batching
    config = {**config, "window_batch": int(config.get("window_batch", 1))}
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    final = out / "model.onnx"
    if quantize:
        _quantize(fp32, final, config, heads, hidden)
    else:
        shutil.copy(fp32, final)
    report: dict[str, Any] = {"onnx_mb": round(final.stat().st_size / 2**20, 1)}
    if val_texts and val_gold:
        for kind, path in (("onnx_fp32", fp32), ("onnx_int8_torch_decoding", final)):
            tagger = _onnx_tagger(out, path, config)
            outs = {aid: tagger.outputs(t) for aid, t in val_texts.items()}
            ev = evaluate(tagger, outs, val_gold)
            report[kind] = ev.__dict__
            _log(f"{kind} val (decoding tuned on torch): {ev.line()}")
        # the shipped network gets its own decoding thresholds and calibration, tuned on its own
        # val outputs exactly as the torch model's were (int8 shifts the token probabilities)
        from unspin.train.loop import fit_decoding, save_config

        report["onnx_int8_tuned"], report["calibration"], ev = fit_decoding(tagger, outs, val_gold)
        report["onnx_int8"] = ev.__dict__
        _log(f"onnx_int8 val (decoding tuned on int8): {ev.line()}")
        save_config(tagger, ev, out)
    (out / "export_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return out


_LAYERNORMS = ("LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization")


def layernorm_matmuls(model: Any) -> list[str]:
    """The MatMul nodes that read a LayerNorm's output (the feed-forward input projections once
    attention is fused): their activations have outlier dimensions that dynamic int8 scales
    badly, so ``quantize = "ln_fp32"`` keeps them fp32."""
    made_by = {out: node.op_type for node in model.graph.node for out in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and made_by.get(node.input[0]) in _LAYERNORMS
    ]


def _quantize(
    fp32: Path,
    final: Path,
    config: dict[str, Any],
    heads: int,
    hidden: int,
    *,
    rewrite: bool = True,
) -> None:
    """Fuse transformer ops (onnxruntime's BERT optimizer: Attention, SkipLayerNorm, BiasGelu,
    EmbedLayerNorm), then int8 dynamic per-channel quantization of the MatMul and embedding
    weights; with ``quantize = "embeddings"`` in the config only the embedding tables, with
    ``"ln_fp32"`` all but the MatMuls that read a LayerNorm (``layernorm_matmuls``). The fused
    Attention is left to the rewrites below, not to onnxruntime's int8 kernel for it
    (QAttention), which measured slower on AVX2 CPUs. Then the
    MatMul weights go to 7 bits (``unspin.train.portable``): full int8 weights saturate on CPUs
    without VNNI, so the same file scored differently on different machines. Last (with
    ``rewrite``), ``unspin.train.graph.speed_up``: SkipLayerNorm as Add + LayerNorm; in mode
    ``"all"``, every Attention but the first with a 7-bit int8 Q/K/V projection; no key padding
    mask (the file is then run unpadded, ``unspin.tagger.session_backend``); the tanh GELU."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = fp32
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        opt = optimize_model(
            str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
        )
        src = fp32.with_name("model.opt.onnx")
        opt.save_model_to_file(str(src))
    except Exception as err:  # the optimizer does not know every architecture
        _log(f"transformer optimizer skipped: {err}")
    mode = config.get("quantize", "all")
    quantize_dynamic(
        str(src),
        str(final),
        weight_type=QuantType.QInt8,
        per_channel=True,  # per-tensor int8 cost 0.6 joint-F1 points on val, per-channel none
        op_types_to_quantize=(
            ["Gather", "EmbedLayerNormalization"]
            if mode == "embeddings"
            else ["MatMul", "Gather", "EmbedLayerNormalization"]
        ),
        nodes_to_exclude=layernorm_matmuls(onnx.load(str(src))) if mode == "ln_fp32" else [],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    if src != fp32:
        src.unlink()
    make_portable(final, final, "reduce_range")
    if rewrite:
        _log(f"graph rewrites: {speed_up(final, final, qkv=mode == 'all')}")


def _onnx_tagger(folder: Path, onnx_path: Path, config: dict[str, Any]) -> Tagger:
    import onnxruntime as ort

    from unspin.segment import load_tokenizer

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    head = dict(np.load(folder / "tc_head.npz"))
    lexical = folder / "lexical.npz"
    tagger = Tagger.from_parts(
        dict(config),
        load_tokenizer(folder / "tokenizer.json"),
        session_backend(sess),
        head,
        LexicalClassifier.load(lexical) if lexical.exists() else None,
        installed_reader(),
    )
    tagger.batch_size, tagger.pad_batches = window_batching(config, sess)  # as Tagger runs it
    return tagger


def installed_reader() -> Path | None:
    """The installed span reader's folder (``unspin.reader.READER_DIR``) for tuning an exported
    model's TC settings, or None (with a log line either way)."""
    from unspin.reader import READER_DIR

    if (READER_DIR / "model.onnx").is_file():
        _log(f"the TC settings are tuned with the span reader in {READER_DIR}")
        return READER_DIR
    _log(f"no span reader in {READER_DIR}: the TC settings are tuned without one")
    return None


def retune(folder: str | Path, corpus: str | Path, *, threads: int = 2) -> dict[str, Any]:
    """Re-tune an exported model's decoding and calibration on val with this machine's
    onnxruntime (for a model exported elsewhere, e.g. on a GPU machine whose onnxruntime
    version gives slightly different int8 outputs). Rewrites config.json; returns the scores."""
    import onnxruntime as ort

    from unspin.corpus import load_split
    from unspin.train.loop import _load, fit_decoding, save_config

    folder = Path(folder)
    tagger = Tagger(folder, threads=threads)
    texts, gold = _load(Path(corpus), load_split(Path(corpus), "val"))
    outs = {aid: tagger.outputs(t) for aid, t in texts.items()}
    tuned, calib, ev = fit_decoding(tagger, outs, gold)
    config = save_config(tagger, ev, folder)
    report_path = folder / "export_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    report["retuned"] = {
        "onnxruntime": ort.__version__,
        "tuned": tuned,
        "calibration": calib,
        "val": ev.__dict__,
    }
    report_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    _log(f"retuned on onnxruntime {ort.__version__}: {ev.line()}  tuned {tuned}")
    return config["val"]


def add_lexical(
    folder: str | Path, corpus: str | Path, *, c: float = 10.0, threads: int = 2
) -> dict[str, Any]:
    """Fit the lexical span classifier on the training split into an exported model's folder
    (``lexical.npz``), then re-tune its decoding (``retune``) so the TC task can weigh it in.
    Returns the val scores."""
    from unspin.corpus import load_split
    from unspin.train.lexical import fit_lexical
    from unspin.train.loop import _load

    folder, corpus = Path(folder), Path(corpus)
    texts, gold = _load(corpus, load_split(corpus, "train"))
    lexical = fit_lexical(texts, gold, c=c)
    lexical.save(folder / "lexical.npz")
    _log(f"lexical classifier: {len(lexical.vocab)} terms, C = {c}")
    return retune(folder, corpus, threads=threads)


def ship(run_onnx: str | Path, name: str, *, default: bool = False) -> Path:
    """Copy an exported model into the package (src/unspin/models/NAME): int8 ONNX, span
    classifier weights in fp16, tokenizer, config."""
    from unspin.registry import MODELS_DIR

    src, dst = Path(run_onnx), MODELS_DIR / name
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    if config.get("encoder") not in ("minilm", "mpnet"):
        raise ModelError(
            f"{src / 'config.json'} names its encoder {config.get('encoder')!r}, not a shipped "
            "encoder's name: train with "
            'encoder = "minilm" or "mpnet" (set UNSPIN_ENCODERS to a folder of unpacked '
            "weights on machines without them) or fix the config before shipping"
        )
    dst.mkdir(parents=True, exist_ok=True)
    if config.get("members"):  # an ensemble: its config is all it has
        config.update(name=name, default=default)
        (dst / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        return dst
    shutil.copy(src / "model.onnx", dst / "model.onnx")
    shutil.copy(src / "tokenizer.json", dst / "tokenizer.json")
    if (src / "lexical.npz").exists():
        shutil.copy(src / "lexical.npz", dst / "lexical.npz")
    else:
        (dst / "lexical.npz").unlink(missing_ok=True)
    with np.load(src / "tc_head.npz") as npz:
        np.savez_compressed(
            dst / "tc_head.npz", **{k: npz[k].astype(np.float16) for k in npz.files}
        )
    config.update(name=name, default=default)
    (dst / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return dst


def ship_reader(run_reader: str | Path) -> Path:
    """Copy a trained span reader (``RUN/reader``, written by ``unspin train`` with ``task =
    "reader"``) into the package (src/unspin/readers/tc), where every model's TC task finds
    it; re-tune each model afterwards (``retune``) so its ``tc_reader_weight`` fits it."""
    from unspin.reader import FILES, READER_DIR, SpanReader

    src = Path(run_reader)
    SpanReader(src, threads=1)  # a broken folder fails here, before anything is replaced
    READER_DIR.mkdir(parents=True, exist_ok=True)
    for stale in READER_DIR.iterdir():  # only the reader's files ship (no model.fp32.onnx)
        if stale.is_file() and stale.name not in FILES:
            stale.unlink()
    for name in FILES:
        shutil.copy(src / name, READER_DIR / name)
    return READER_DIR
