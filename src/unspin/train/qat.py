"""Quantization-aware self-distillation: teach a trained network to give its own fp32 outputs
through the rounding of its int8 file.

``export`` quantizes every MatMul with a weight dynamically: each window's input to such a
MatMul is rounded to uint8 over that window's range, each weight column to 7 bits
(per-channel int8, then ``unspin.train.portable``'s ``reduce_range``), and the embedding
tables to uint8 per table. The rounding moves the token probabilities enough to cost about a
point of val F1 (MODEL_CARD.md).

``self_distill`` trains a copy of the network whose Linear layers see that rounding
(straight-through gradients; exactly that rounding in fp32, approximately under bf16
autocast, which also makes the targets bf16 outputs) to match the unrounded network's outputs
(SI softmax, technique sigmoids, the hidden states that the span head reads) on training
windows. The copy's weights are then plain fp32 weights that the same int8 export rounds into
a file closer to the fp32 network than the plain export. The span head and the embedding
tables do not train (the tables keep their uint8-rounded values). The emulation assumes the
unfused MatMul graph of MPNet; for encoders whose attention onnxruntime fuses (BERT, MiniLM)
it rounds a few more MatMuls than the file does. Config keys: ``qat_steps`` (0: no such
stage), ``qat_lr``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unspin.train.model import Network

__all__ = [
    "fake_activation",
    "fake_table",
    "fake_weight",
    "qat_run",
    "rounded_copy",
    "self_distill",
]


def fake_weight(w: torch.Tensor) -> torch.Tensor:
    """A Linear weight (out, in) as the int8 file holds it: symmetric int8 per output channel
    (scale absmax / 127, rounded half to even, as onnxruntime's quantizer), then halved to 7
    bits (``portable.make_portable(..., "reduce_range")``), dequantized."""
    s = (w.abs().amax(dim=1, keepdim=True) / 127).clamp(min=1e-12)
    q7 = torch.clamp(torch.round(torch.round(w / s) / 2), -64, 63)
    return q7 * (2 * s)


def fake_activation(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """onnxruntime's ``DynamicQuantizeLinear`` on each window (batch row) of ``x`` (B, L, D):
    uint8 over the range of the row's real tokens (``mask`` (B, L)) widened to include 0,
    dequantized."""
    m = mask.bool()[..., None]
    big = torch.finfo(x.dtype).max
    hi = x.masked_fill(~m, -big).amax(dim=(1, 2), keepdim=True).clamp(min=0)
    lo = x.masked_fill(~m, big).amin(dim=(1, 2), keepdim=True).clamp(max=0)
    s = ((hi - lo) / 255).clamp(min=1e-12)
    zp = torch.clamp(torch.round(-lo / s), 0, 255)
    return (torch.clamp(torch.round(x / s) + zp, 0, 255) - zp) * s


def fake_table(w: torch.Tensor) -> torch.Tensor:
    """An embedding table as the int8 file holds it: uint8, one scale and zero point per table."""
    hi, lo = w.max().clamp(min=0), w.min().clamp(max=0)
    s = ((hi - lo) / 255).clamp(min=1e-12)
    zp = torch.clamp(torch.round(-lo / s), 0, 255)
    return (torch.clamp(torch.round(w / s) + zp, 0, 255) - zp) * s


class _RoundedLinear(nn.Linear):
    """A Linear whose input and weight are rounded as in the int8 file (straight-through)."""

    def __init__(self, old: nn.Linear, mask: list[torch.Tensor]) -> None:
        super().__init__(old.in_features, old.out_features, bias=old.bias is not None)
        self.weight, self.bias = old.weight, old.bias
        self.mask = mask  # shared: the current batch's attention mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xr = fake_activation(x.detach().float(), self.mask[0]).to(x.dtype)
        w = self.weight
        return F.linear(
            x + (xr - x).detach(), w + (fake_weight(w.detach()) - w).detach(), self.bias
        )


def rounded_copy(net: Network) -> tuple[Network, list[torch.Tensor]]:
    """A deep copy of ``net`` that computes as its int8 file does; returns it and the one-item
    list its Linear layers read the attention mask from (set it before each forward). Its
    state dict has the same keys as ``net``'s."""
    copy_ = copy.deepcopy(net)
    mask: list[torch.Tensor] = [torch.ones(1, 1)]
    targets: list[tuple[nn.Module, str]] = [(copy_, "si"), (copy_, "tech")]
    for layer in copy_.encoder.encoder.layer:
        for mod in layer.modules():
            targets += [(mod, n) for n, c in mod.named_children() if isinstance(c, nn.Linear)]
        act = getattr(getattr(layer, "intermediate", None), "intermediate_act_fn", None)
        if act is not None:  # the int8 graph runs the tanh GELU (unspin.train.graph.speed_up)
            layer.intermediate.intermediate_act_fn = nn.GELU(approximate="tanh")
    for mod, name in targets:
        setattr(mod, name, _RoundedLinear(getattr(mod, name), mask))
    with torch.no_grad():
        for table in copy_.encoder.modules():
            if isinstance(table, nn.Embedding):
                table.weight.copy_(fake_table(table.weight))
                table.weight.requires_grad_(False)
    for head in (copy_.tc1, copy_.tc2):  # the span head reads `hidden`: kept as it is
        for p in head.parameters():
            p.requires_grad_(False)
    return copy_, mask


def _batch(windows: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(w) for w in windows)
    ids = torch.full((len(windows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    for r, w in enumerate(windows):
        ids[r, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.int64))
        mask[r, : len(w)] = 1
    return ids, mask


def _losses(
    student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...], m: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    (s_si, s_tech, s_h), (t_si, t_tech, t_h) = student, teacher
    p = torch.softmax(t_si.float()[m], -1)
    kl_si = (p * (torch.log(p + 1e-9) - torch.log_softmax(s_si.float()[m], -1))).sum(-1).mean()
    q = torch.sigmoid(t_tech.float()[m])
    kl_tech = F.binary_cross_entropy_with_logits(
        s_tech.float()[m], q
    ) - F.binary_cross_entropy_with_logits(t_tech.float()[m], q)
    return kl_si, kl_tech, F.mse_loss(s_h.float()[m], t_h.float()[m])


def self_distill(
    net: Network,
    windows: Sequence[np.ndarray],
    pad_id: int,
    *,
    steps: int,
    lr: float = 2e-5,
    batch_size: int = 8,
    bf16: bool = False,
    seed: int = 13,
    log: Callable[[str], None] = print,
) -> Network:
    """``steps`` AdamW steps (5% warm-up, linear decay) of the rounded copy of ``net`` towards
    ``net``'s own outputs on ``windows`` (token id arrays with their special tokens); returns a
    plain ``Network`` (``net`` itself, its weights replaced) ready for ``export``."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    dev = next(net.parameters()).device
    net.eval()
    student, mask = rounded_copy(net)
    student.eval()  # no dropout: the targets are the network's own deterministic outputs
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1)))
    )
    order: list[int] = []
    t0, seen = time.time(), []
    for step in range(steps):
        if len(order) < batch_size:
            order += [int(i) for i in rng.permutation(len(windows))]
        ids, m = _batch([windows[order.pop()] for _ in range(batch_size)], pad_id)
        ids, m = ids.to(dev), m.to(dev)
        mask[0] = m
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                target = net(ids, m)
            out = student(ids, m)
        kl_si, kl_tech, mse = _losses(out, target, m.bool())
        loss = kl_si + kl_tech + mse
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        seen.append((kl_si.item(), kl_tech.item(), mse.item()))
        if (step + 1) % 25 == 0 or step + 1 == steps:
            a, b, c = np.mean(seen[-25:], axis=0)
            log(
                f"qat step {step + 1}/{steps} kl_si {a:.5f} kl_tech {b:.5f} mse_hidden {c:.5f} "
                f"({(time.time() - t0) / (step + 1):.2f} s/step)"
            )
    state = {k: v.detach().clone() for k, v in student.state_dict().items()}
    net.load_state_dict(state)
    return net


def qat_run(
    run: str | Path,
    out: str | Path,
    corpus: str | Path,
    *,
    steps: int = 400,
    lr: float = 2e-5,
    unlabeled: str | Path | None = None,
) -> Path:
    """The rounding-aware stage alone, on a trained run (``RUN/network.pt`` and its
    ``train_report.json``): writes ``OUT/network.pt`` and ``OUT/train_report.json`` (the run's,
    with ``qat_steps`` and ``qat_lr`` set), then ``finalize(OUT)`` tunes and exports it. Its
    windows are the run's training windows: the training split, plus, for a run with a teacher,
    the articles of ``unlabeled`` (default: the run's ``unlabeled`` folder, else
    ``CORPUS/../unlabeled-news``); no teacher runs, only their token ids are read."""
    from unspin.corpus import load_split
    from unspin.segment import load_tokenizer
    from unspin.train.config import DEFAULTS, PTC_TRAIN
    from unspin.train.data import build_examples
    from unspin.train.distill import load_unlabeled
    from unspin.train.encoders import resolve_encoder
    from unspin.train.loop import _infer_config, _load, _log, _window_args, finalize

    run, out, corpus = Path(run), Path(out), Path(corpus)
    meta = json.loads((run / "train_report.json").read_text(encoding="utf-8"))
    cfg = {**DEFAULTS, **meta["config"]}
    torch.set_num_threads(int(cfg["threads"]))
    enc_dir = resolve_encoder(cfg["encoder"])
    tok = load_tokenizer(enc_dir / "tokenizer.json")
    texts, gold = _load(corpus, load_split(corpus, "train"))
    infer_cfg = _infer_config(cfg, tok, gold)
    args = _window_args(cfg, infer_cfg)
    windows = [e.ids for e in build_examples(texts, gold, tok, **args)]
    if cfg["teacher"] and cfg["unlabeled"] != PTC_TRAIN:
        folder = Path(unlabeled or cfg["unlabeled"] or corpus.parent / "unlabeled-news")
        if not folder.is_dir() and unlabeled is None:
            folder = corpus.parent / "unlabeled-news"
        more = load_unlabeled(folder, int(cfg["unlabeled_limit"]))
        windows += [e.ids for e in build_examples(more, {}, tok, **args)]
    elif cfg["teacher"]:
        windows += windows
    _log(f"rounding-aware self-distillation of {run / 'network.pt'}: {len(windows)} windows")
    net = Network(enc_dir, layers=int(cfg["layers"]) or None)
    net.load_state_dict(torch.load(run / "network.pt", map_location="cpu"))
    t0 = time.time()
    self_distill(
        net,
        windows,
        int(infer_cfg["pad_id"]),
        steps=steps,
        lr=lr,
        batch_size=int(cfg["batch_size"]),
        bf16=bool(cfg["bf16"]),
        seed=int(cfg["seed"]),
        log=_log,
    )
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, out / "network.pt")
    meta["config"] = {**meta["config"], "qat_steps": steps, "qat_lr": lr}
    meta["qat"] = {"from": str(run), "windows": len(windows), "minutes": (time.time() - t0) / 60}
    meta.pop("torch_val", None)
    (out / "train_report.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    finalize(out, corpus)
    return out
