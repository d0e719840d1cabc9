"""Train the span reader (``unspin.reader``): a MiniLM fine-tuned to name the technique of one
marked span in its context, exported to int8 ONNX (``unspin train`` with ``task = "reader"``)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModel

from unspin.corpus import load_split, load_texts_and_gold
from unspin.decode import occurrences
from unspin.reader import SpanReader, encode_span
from unspin.segment import load_tokenizer, save_plain_tokenizer
from unspin.techniques import TECHNIQUES
from unspin.train.encoders import resolve_encoder
from unspin.train.export import _quantize
from unspin.train.loop import _device, _token_id, adamw
from unspin.train.soft_targets import load_soft_targets, soft_rows

__all__ = [
    "ReaderNet",
    "finish_reader",
    "fit_reader",
    "reader_tc_f1",
    "train_reader",
]

Row = dict[str, Any]


class ReaderNet(nn.Module):
    """Encoder, then one linear layer over [CLS], the span tokens' mean, the start marker's
    state and an embedding of the span's recurrence count (0..max_recurrence)."""

    def __init__(self, encoder_dir: Path, max_recurrence: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True)
        h = self.encoder.config.hidden_size
        self.recurrence = nn.Embedding(max_recurrence + 1, 16)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(3 * h + 16, len(TECHNIQUES))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        span_mask: torch.Tensor,
        marker: torch.Tensor,
        recurrence: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = span_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        start = hidden[torch.arange(hidden.shape[0]), marker]
        z = torch.cat([hidden[:, 0], mean, start, self.recurrence(recurrence).to(hidden.dtype)], -1)
        return self.out(self.drop(z))


def _rows(tok: Any, config: dict[str, Any], texts: dict, gold: dict) -> list[Row]:
    """One row per distinct gold span; a span with k techniques has a soft target of 1/k on each."""
    rows = []
    cap = int(config["max_recurrence"])
    for aid, spans in gold.items():
        labels: dict[tuple[int, int], list[int]] = {}
        for s, e, t in spans:
            labels.setdefault((s, e), []).append(TECHNIQUES.index(t))
        for (s, e), techs in sorted(labels.items()):
            target = np.zeros(len(TECHNIQUES), np.float32)
            for t in techs:
                target[t] += 1.0 / len(techs)
            seq, a, b = encode_span(tok, config, texts[aid], s, e)
            rec = min(occurrences(texts[aid], s, e), cap)
            rows.append(
                {"aid": aid, "span": (s, e), "seq": seq, "a": a, "b": b, "y": target, "rec": rec}
            )
    return rows


def _batch(rows: list[Row], pad_id: int) -> tuple[torch.Tensor, ...]:
    width = max(len(r["seq"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    span_mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r["seq"])] = torch.tensor(r["seq"])
        mask[i, : len(r["seq"])] = 1
        span_mask[i, r["a"] + 1 : r["b"]] = 1
    marker = torch.tensor([r["a"] for r in rows])
    rec = torch.tensor([r["rec"] for r in rows])
    target = torch.from_numpy(np.stack([r["y"] for r in rows]))
    return ids, mask, span_mask, marker, rec, target


def _batches(rows: list[Row], size: int, rng: random.Random | None) -> list[list[int]]:
    """Batches of similar length (little padding), in random order when ``rng`` is given."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["seq"]))
    out = [order[i : i + size] for i in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(out)
    return out


def reader_tc_f1(log_probs: dict[tuple[str, int, int], np.ndarray], gold: dict) -> float:
    """TC micro-F1 of a span reader's ranking on gold spans (a span listed k times gets its k
    best distinct techniques)."""
    from unspin.corpus import Label
    from unspin.scorer import score

    gold_rows, pred_rows = [], []
    for aid, spans in gold.items():
        used: dict[tuple[int, int], int] = {}
        for s, e, t in spans:
            k = used.get((s, e), 0)
            used[(s, e)] = k + 1
            best = np.argsort(-log_probs[(aid, s, e)])[k % len(TECHNIQUES)]
            gold_rows.append(Label(article_id=aid, start=s, end=e, technique=t))
            pred_rows.append(Label(article_id=aid, start=s, end=e, technique=TECHNIQUES[best]))
    return score("tc", gold_rows, pred_rows).f1


def _predict(
    net: ReaderNet, rows: list[Row], pad_id: int, dev: torch.device | None = None
) -> dict[tuple[str, int, int], np.ndarray]:
    net.eval()
    out = {}
    dev = dev or torch.device("cpu")
    with torch.no_grad():
        for batch in _batches(rows, 32, None):
            ids, mask, span_mask, marker, rec, _ = (
                t.to(dev) for t in _batch([rows[i] for i in batch], pad_id)
            )
            logits = net(ids, mask, span_mask, marker, rec).float()
            lp = torch.log_softmax(logits, -1).cpu().numpy()
            for i, p in zip(batch, lp, strict=True):
                out[(rows[i]["aid"], *rows[i]["span"])] = p
    return out


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def reader_config(cfg: dict[str, Any], tok: Any) -> dict[str, Any]:
    """The config.json saved beside a span reader trained with training config ``cfg``."""
    return {
        "name": cfg["name"],
        "kind": "span_reader",
        "encoder": cfg["encoder"],
        "cls_id": _token_id(tok, "[CLS]", "<s>"),
        "sep_id": _token_id(tok, "[SEP]", "</s>"),
        "pad_id": _token_id(tok, "[PAD]", "<pad>"),
        "start_id": _token_id(tok, "[unused0]", "[MASK]", "<mask>"),
        "end_id": _token_id(tok, "[unused1]", "[UNK]", "<unk>"),
        **{k: int(cfg[k]) for k in ("left_tokens", "right_tokens", "span_tokens", "context_chars")},
        "max_recurrence": 5,
        "techniques": list(TECHNIQUES),
    }


def fit_reader(
    cfg: dict[str, Any],
    corpus: Path,
    extra: Callable[[Any, dict[str, Any]], list[Row]] | None = None,
) -> tuple[ReaderNet, dict[str, Any], dict[str, Any]]:
    """Fine-tune on ``cfg["device"]`` and keep the epoch with the best val TC F1 (torch). Returns
    the network (on CPU, best epoch loaded), its reader config and a report (val rows, gold,
    texts, history, best F1). No export: a GPU machine runs this part alone. ``extra(tokenizer,
    reader config)`` gives more training rows (``soft_rows``: a teacher's soft targets)."""
    torch.set_num_threads(int(cfg["threads"]))
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    dev = _device(cfg)
    enc_dir = resolve_encoder(cfg["encoder"])
    tok = load_tokenizer(enc_dir / "tokenizer.json")
    config = reader_config(cfg, tok)
    splits = {}
    for split, limit in (("train", "max_train_articles"), ("val", "max_val_articles")):
        ids = load_split(corpus, split)
        ids = ids[: cfg[limit]] if cfg[limit] else ids
        splits[split] = load_texts_and_gold(corpus, ids)
    train_rows = _rows(tok, config, *splits["train"])
    if extra is not None:
        train_rows += extra(tok, config)
    val_rows = _rows(tok, config, *splits["val"])
    val_gold = splits["val"][1]
    _log(f"span reader: {len(train_rows)} train spans, {len(val_rows)} val spans on {dev}")
    net = ReaderNet(enc_dir, config["max_recurrence"]).to(dev)
    freq = np.stack([r["y"] for r in train_rows]).sum(0) + 1.0
    share = freq / freq.sum()
    weight = share**-0.5  # class weights, normalised to 1 on average over the training spans
    weight = torch.tensor(weight / (weight * share).sum(), dtype=torch.float32, device=dev)
    opt = adamw(net, cfg)
    bs = int(cfg["batch_size"])
    steps = int(cfg["epochs"]) * len(_batches(train_rows, bs, None))
    warm = max(int(cfg["warmup"] * steps), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1)))
    )
    rng = random.Random(cfg["seed"])
    best: tuple[float, dict[str, torch.Tensor] | None] = (-1.0, None)
    history = []
    t0 = time.time()
    for epoch in range(1, int(cfg["epochs"]) + 1):
        net.train()
        total = 0.0
        for batch in _batches(train_rows, bs, rng):
            ids, mask, span_mask, marker, rec, target = (
                t.to(dev) for t in _batch([train_rows[i] for i in batch], config["pad_id"])
            )
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(cfg["bf16"])):
                logits = net(ids, mask, span_mask, marker, rec).float()
            loss = -(target * weight * torch.log_softmax(logits, -1)).sum(-1).mean()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            total += float(loss.detach())
        f1 = reader_tc_f1(_predict(net, val_rows, config["pad_id"], dev), val_gold)
        history.append({"epoch": epoch, "loss": total, "val_tc_f1": round(f1, 4)})
        _log(f"span reader epoch {epoch}: val TC {f1:.4f} ({time.time() - t0:.0f} s)")
        if f1 > best[0]:
            best = (f1, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
        if cfg["max_minutes"] and time.time() - t0 > 60 * cfg["max_minutes"]:
            _log(f"span reader: stopping after epoch {epoch} (max_minutes)")
            break
    assert best[1] is not None
    net = net.cpu().float()
    net.load_state_dict(best[1])
    report = {
        "best_f1": best[0],
        "history": history,
        "train_rows": train_rows,
        "val_rows": val_rows,
        "val_texts": splits["val"][0],
        "val_gold": val_gold,
        "tokenizer_json": enc_dir / "tokenizer.json",
    }
    return net, config, report


def train_reader(cfg: dict[str, Any], corpus: Path, out: Path) -> Path:
    """Fine-tune, keep the epoch with the best val TC F1, export int8 ONNX to ``out/reader``;
    returns ``out``."""
    from unspin.train.loop import check_disjoint

    check_disjoint(load_split(corpus, "train"), load_split(corpus, "val"))
    extra = None
    if cfg["soft_targets"]:
        texts, soft = load_soft_targets(
            cfg["soft_targets"], cfg["unlabeled"] or corpus.parent / "unlabeled-news"
        )
        _log(f"span reader: {sum(len(s) for s, _ in soft.values())} soft-labelled spans")

        def extra(tok: Any, config: dict[str, Any]) -> list[Row]:
            return soft_rows(tok, config, texts, soft)

    net, config, report = fit_reader(cfg, corpus, extra)
    out.mkdir(parents=True, exist_ok=True)  # (not before: a mistake leaves no empty folder)
    torch.save(net.state_dict(), out / "reader.pt")
    finish_reader(net, config, report, out / "reader", int(cfg["threads"]))
    return out


def finish_reader(
    net: ReaderNet, config: dict[str, Any], report: dict[str, Any], folder: Path, threads: int
) -> Path:
    """Export ``net`` to ``folder`` and score the int8 export on val (saved in its config)."""
    export_reader(net, config, report["tokenizer_json"], folder)
    reader = SpanReader(folder, threads=threads)
    texts, val_gold = report["val_texts"], report["val_gold"]
    lp = {}
    for aid, spans in val_gold.items():
        pairs = sorted({(s, e) for s, e, _ in spans})
        for (s, e), p in zip(pairs, reader.log_probs(texts[aid], pairs), strict=True):
            lp[(aid, s, e)] = p
    config["val"] = {
        "tc_f1_torch": round(report["best_f1"], 4),
        "tc_f1": round(reader_tc_f1(lp, val_gold), 4),
    }
    config["history"] = report["history"]
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    _log(f"span reader int8 val TC {config['val']['tc_f1']:.4f} (torch {report['best_f1']:.4f})")
    return folder


class _Graph(nn.Module):
    def __init__(self, net: ReaderNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids, attention_mask, span_mask, marker, recurrence):  # type: ignore[no-untyped-def]
        return self.net(input_ids, attention_mask, span_mask, marker, recurrence)


def export_reader(net: ReaderNet, config: dict[str, Any], tokenizer_json: Path, out: Path) -> Path:
    """``out/`` = model.onnx (int8 MatMuls and embeddings) + tokenizer.json + config.json."""
    out.mkdir(parents=True, exist_ok=True)
    net = net.float().eval()
    enc_cfg = net.encoder.config
    attn = getattr(enc_cfg, "_attn_implementation", None)
    enc_cfg._attn_implementation = "eager"  # the pattern onnxruntime fuses into Attention
    ids = torch.full((2, 12), int(config["pad_id"]), dtype=torch.long)
    ids[:, 0] = int(config["cls_id"])
    names = ["input_ids", "attention_mask", "span_mask", "marker", "recurrence"]
    args = (
        ids,
        torch.ones_like(ids),
        torch.ones_like(ids),
        torch.ones(2, dtype=torch.long),
        torch.zeros(2, dtype=torch.long),
    )
    fp32 = out / "model.fp32.onnx"
    torch.onnx.export(
        _Graph(net),
        args,
        str(fp32),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "span_mask": {0: "batch", 1: "seq"},
            "marker": {0: "batch"},
            "recurrence": {0: "batch"},
            "logits": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    enc_cfg._attn_implementation = attn
    # the taggers' fusions and per-channel int8 MatMuls and embeddings, without the taggers'
    # graph rewrites: on the shipped reader they cost 0.3-0.7 TC points (round 13)
    _quantize(
        fp32,
        out / "model.onnx",
        {"quantize": "all"},
        int(enc_cfg.num_attention_heads),
        int(enc_cfg.hidden_size),
        rewrite=False,
    )
    save_plain_tokenizer(tokenizer_json, out / "tokenizer.json")
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return out
