"""`unspin train CONFIG`: fine-tune, select the epoch on val, tune decoding, calibrate, export."""

from __future__ import annotations

import json
import os
import random
import re
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unspin.corpus import load_split, load_texts_and_gold
from unspin.errors import CorpusError, InputError
from unspin.evaluate import evaluate, fit_platt, reliability, span_correct, tune, val_scores
from unspin.segment import load_tokenizer
from unspin.tagger import ArticleOutputs, Tagger
from unspin.techniques import TECHNIQUES
from unspin.train.config import DEFAULTS, PTC_TRAIN, load_config
from unspin.train.data import Example, build_examples
from unspin.train.encoders import resolve_encoder
from unspin.train.model import Network

__all__ = ["train", "finalize", "load_config"]

# a transformer layer's weights in a network.pt (BERT/MiniLM and MPNet name them alike)
_LAYER_KEY = re.compile(r"encoder\.encoder\.layer\.(\d+)\.")


def adamw(net: torch.nn.Module, cfg: dict[str, Any]) -> torch.optim.AdamW:
    """AdamW with the encoder at ``lr`` and every other parameter (the heads) at ``head_lr``."""
    heads = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    return torch.optim.AdamW(
        [
            {"params": net.encoder.parameters(), "lr": cfg["lr"]},
            {"params": heads, "lr": cfg["head_lr"]},
        ],
        weight_decay=cfg["weight_decay"],
    )


def _device(cfg: dict[str, Any]) -> torch.device:
    want = str(cfg["device"])
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        from unspin.errors import ModelError

        raise ModelError('config asks for device = "cuda" but torch sees no GPU: use "cpu"')
    return torch.device(want)


def _to(batch: dict[str, Any], dev: torch.device) -> dict[str, Any]:
    if dev.type == "cpu":
        return batch
    out = {k: v.to(dev, non_blocking=True) for k, v in batch.items() if k != "spans"}
    out["spans"] = [(r, a, b, f.to(dev), y) for r, a, b, f, y in batch["spans"]]
    return out


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _load(corpus: Path, ids: list[str]) -> tuple[dict[str, str], dict[str, list]]:
    return load_texts_and_gold(corpus, ids)


def _collate(batch: list[Example], pad_id: int) -> dict[str, Any]:
    L = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), L), dtype=torch.long)
    si = torch.full((len(batch), L), -100, dtype=torch.long)
    tech = torch.zeros((len(batch), L, len(TECHNIQUES)))
    tmask = torch.zeros((len(batch), L))
    soft = torch.zeros((len(batch), L, 3))  # teacher targets; all-zero rows carry no loss
    spans = []
    for r, e in enumerate(batch):
        n = len(e.ids)
        ids[r, :n] = torch.from_numpy(e.ids)
        mask[r, :n] = 1
        si[r, :n] = torch.from_numpy(e.si)
        tech[r, :n] = torch.from_numpy(e.tech)
        tmask[r, 1 : n - 1] = 1
        if e.si_soft is not None:
            soft[r, :n] = torch.from_numpy(e.si_soft)
        spans += [(r, s.a, s.b, torch.from_numpy(s.feats), s.label) for s in e.spans]
    return {
        "ids": ids,
        "mask": mask,
        "si": si,
        "soft": soft,
        "tech": tech,
        "tmask": tmask,
        "spans": spans,
    }


def _window_args(cfg: dict[str, Any], infer_cfg: dict[str, Any]) -> dict[str, int]:
    """How training articles are cut into windows (gold and soft-labelled alike): ``train_max_len``
    long (default ``max_len``), every ``train_stride`` tokens."""
    return {
        "cls_id": infer_cfg["cls_id"],
        "sep_id": infer_cfg["sep_id"],
        "max_len": int(cfg.get("train_max_len") or 0) or cfg["max_len"],
        "stride": cfg["train_stride"],
    }


def _soft_examples(
    cfg: dict[str, Any], corpus: Path, tok: Any, infer_cfg: dict[str, Any]
) -> list[Example]:
    from unspin.train.distill import build_soft_examples, ensemble_targets, load_unlabeled

    if cfg["unlabeled"] == PTC_TRAIN:  # the training articles themselves, labelled by the teacher
        texts, _ = _load(corpus, load_split(corpus, "train"))
        if cfg["max_train_articles"]:
            texts = dict(list(texts.items())[: cfg["max_train_articles"]])
        if cfg["unlabeled_limit"]:
            texts = dict(list(texts.items())[: int(cfg["unlabeled_limit"])])
        source, where = "ptc-train", f"{corpus} (training split)"
    else:
        folder = Path(cfg["unlabeled"] or corpus.parent / "unlabeled-news")
        texts = load_unlabeled(folder, int(cfg["unlabeled_limit"]))
        source, where = folder.name, str(folder)
    n = len(texts)
    _log(f"teacher {cfg['teacher']} labels {n} article{'s' if n != 1 else ''} from {where}")
    targets = ensemble_targets(cfg["teacher"], texts, source, threads=int(cfg["threads"]), log=_log)
    soft = build_soft_examples(texts, targets, tok, **_window_args(cfg, infer_cfg))
    _log(f"{len(soft)} soft-labelled windows added")
    return soft


def _load_init(net: Network, path: Path) -> None:
    """Every weight from a trained run's network.pt (config key ``init``)."""
    from unspin.errors import ModelError

    if not path.is_file():
        raise InputError(f"init = {str(path)!r}: no such file (a run's network.pt)")
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as err:  # torch raises several types for a file that is no checkpoint
        raise ModelError(f"init = {str(path)!r} is not a network.pt ({err})") from None
    if not isinstance(state, dict):
        raise ModelError(f"init = {str(path)!r} is not a network.pt (no state dict in it)")
    state, dropped = _bottom_layers(state, len(net.encoder.encoder.layer))
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ModelError(
            f"init = {str(path)!r} does not fit this config's network (encoder, layers): {first}"
        ) from None
    kept = f" (its bottom {len(net.encoder.encoder.layer)} layers of {dropped})" if dropped else ""
    _log(f"started from {path}{kept}")


def _bottom_layers(state: dict[str, Any], layers: int) -> tuple[dict[str, Any], int]:
    """A deeper network's state cut to its bottom ``layers`` transformer layers (layer
    dropping: ``layers = 6`` with ``init`` a 12-layer run), and the depth it had; a state no
    deeper than ``layers`` comes back as it is, with 0."""
    depth = 1 + max((int(m.group(1)) for k in state if (m := _LAYER_KEY.match(k))), default=-1)
    if depth <= layers:
        return state, 0
    kept = {
        k: v
        for k, v in state.items()
        if not ((m := _LAYER_KEY.match(k)) and int(m.group(1)) >= layers)
    }
    return kept, depth


def _si_loss(ce: nn.CrossEntropyLoss, si: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """Cross-entropy on gold O/B/I labels plus soft cross-entropy on teacher targets."""
    hard = batch["si"].reshape(-1)
    loss = ce(si.reshape(-1, 3), hard) if (hard != -100).any() else si.sum() * 0.0
    has_soft = batch["soft"].sum(-1) > 0
    if has_soft.any():
        logp = torch.log_softmax(si[has_soft], dim=-1)
        loss = loss + -(batch["soft"][has_soft] * logp).sum(-1).mean()
    return loss


def torch_backend(net: Network):
    def run(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
        dev = next(net.parameters()).device
        with torch.inference_mode():
            si, tech, hidden = net(torch.from_numpy(ids).to(dev), torch.from_numpy(mask).to(dev))
        return si.float().cpu().numpy(), tech.float().cpu().numpy(), hidden.float().cpu().numpy()

    return run


def _outputs(tagger: Tagger, texts: dict[str, str]) -> dict[str, ArticleOutputs]:
    return {aid: tagger.outputs(t) for aid, t in texts.items()}


def fit_decoding(tagger: Tagger, outputs: dict, gold: dict) -> tuple[dict, dict, Any]:
    """Tune decoding, then fit calibration, on val outputs (from scratch: any calibration in
    the tagger's config is dropped first); returns (tuned settings, calibration report, scores)."""
    tagger.config.update(si_calibration=None, joint_calibration=None)
    tuned = tune(tagger, outputs, gold)
    calib = calibrate_on(tagger, outputs, gold)
    return tuned, calib, evaluate(tagger, outputs, gold)


def save_config(tagger: Tagger, ev: Any, folder: Path) -> dict[str, Any]:
    """Write the tagger's (tuned, calibrated) config with its val scores to folder/config.json."""
    config = tagger.config
    config["val"] = val_scores(ev)
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return config


def calibrate_on(tagger: Tagger, outputs: dict, gold: dict) -> dict[str, Any]:
    """Fit Platt scaling for SI and joint span scores; report a 2-fold cross-fitted reliability
    table (each half calibrated on the other) so the reported error is not fitted on itself."""
    c = tagger.config
    c["si_calibration"] = c["joint_calibration"] = None
    c.pop("joint_raw_threshold", None)
    raw_jt = c.get("joint_threshold", 0.0)
    report: dict[str, Any] = {}
    for kind in ("si", "joint"):
        rows = []
        for aid, out in outputs.items():
            spans = tagger._si_spans(out, None) if kind == "si" else tagger._joint_spans(out, 0.0)
            rows += [(aid, s.start, s.end, s.technique, s.score) for s in spans]
        if len(rows) < 10:
            continue
        raw = np.array([r[4] for r in rows])
        y = span_correct([r[:4] for r in rows], gold, joint=kind == "joint")
        # by article, deterministically (str hash() is salted per process: not reproducible)
        folds = np.array([zlib.crc32(r[0].encode()) % 2 for r in rows])
        cross = np.zeros_like(raw)
        both = bool((folds == 0).any() and (folds == 1).any())
        for f in (0, 1) if both else ():  # (every article in one half: nothing to cross-fit)
            ab = fit_platt(raw[folds != f], y[folds != f])
            p = np.clip(raw[folds == f], 1e-6, 1 - 1e-6)
            cross[folds == f] = 1 / (1 + np.exp(-(ab[0] * np.log(p / (1 - p)) + ab[1])))
        table, ece = reliability(cross, y) if both else ([], None)
        raw_table, raw_ece = reliability(raw, y)
        ab = fit_platt(raw, y)
        c[f"{kind}_calibration"] = ab
        report[kind] = {
            "platt": ab,
            "ece_raw": raw_ece,
            "ece_calibrated_crossfit": ece,
            "table_raw": raw_table,
            "table": table,
            "n": len(rows),
        }
    if c.get("joint_calibration"):
        a, b = c["joint_calibration"]
        p = min(max(raw_jt, 1e-6), 1 - 1e-6)
        if a > 0 or not raw_jt:  # the map is monotone: the tuned cut, in calibrated units
            c["joint_threshold"] = (
                float(1 / (1 + np.exp(-(a * np.log(p / (1 - p)) + b)))) if raw_jt else 0.0
            )
        else:  # a flat fit gives every span one score, which a cut would keep all or none of:
            # the tuned cut stays on the raw score (Tagger._joint_spans applies it)
            c["joint_raw_threshold"], c["joint_threshold"] = raw_jt, 0.0
    return report


def _token_id(tok: Any, *names: str) -> int:
    for name in names:
        if tok.token_to_id(name) is not None:
            return int(tok.token_to_id(name))
    raise ValueError(f"tokenizer has none of {names}")


def technique_prior(gold: dict[str, list[tuple[int, int, str]]]) -> list[float]:
    """Each technique's share of the gold rows: the span classifier's answer for a span with
    no tokens to read (a blank article)."""
    counts = np.zeros(len(TECHNIQUES))
    for rows in gold.values():
        for _, _, t in rows:
            counts[TECHNIQUES.index(t)] += 1
    return [round(float(c), 4) for c in counts / max(counts.sum(), 1.0)]


def _infer_config(
    cfg: dict[str, Any], tok: Any, tr_gold: dict[str, list[tuple[int, int, str]]]
) -> dict[str, Any]:
    """What inference needs to know about the model (saved as config.json beside it)."""
    return {
        "name": cfg["name"],
        "encoder": cfg["encoder"],
        "layers": int(cfg["layers"]) or None,
        "max_len": cfg["max_len"],
        "stride": cfg["stride"],
        "cls_id": _token_id(tok, "[CLS]", "<s>"),
        "sep_id": _token_id(tok, "[SEP]", "</s>"),
        "pad_id": _token_id(tok, "[PAD]", "<pad>"),
        "batch_size": 8,
        "quantize": cfg["quantize"],
        "joint_tuner": cfg["joint_tuner"],
        "techniques": list(TECHNIQUES),
        # cut decoded spans where a sentence ends inside them (neutral on val F1, +-0.2)
        "split_sentences": True,
        "tc_prior": technique_prior(tr_gold),
    }


def _check_layers(cfg: dict[str, Any], enc_dir: Path) -> None:
    """``layers`` keeps the encoder's bottom layers; more than it has would silently keep all."""
    try:
        have = int(json.loads((enc_dir / "config.json").read_text("utf-8"))["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # an encoder folder without the usual config: transformers will say more
    if int(cfg["layers"]) > have:
        raise InputError(
            f"layers = {cfg['layers']}: the {cfg['encoder']} encoder has {have} layers; set "
            f"layers from 1 to {have} (0 keeps all)"
        )


def check_disjoint(train_ids: list[str], val_ids: list[str]) -> None:
    """Val selects and scores models: an article in both splits would be scored on what the
    model was trained on."""
    both = sorted(set(train_ids) & set(val_ids))
    if both:
        raise CorpusError(
            f"article{'s' if len(both) > 1 else ''} {', '.join(both[:5])}"
            f"{' ...' if len(both) > 5 else ''} in both splits/train.txt and splits/val.txt; "
            "each article belongs to one split"
        )


def train(
    config_path: str | Path, corpus: str | Path, out_dir: str | Path, *, finalize_run: bool = True
) -> Path:
    cfg = load_config(config_path)
    if cfg.get("members"):  # an ensemble of shipped models: tune and calibrate only
        from unspin.train.ensemble import build_ensemble

        return build_ensemble(cfg, Path(corpus), Path(out_dir))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if cfg["task"] == "reader":  # the TC task's span reader, not a tagger
        from unspin.train.reader import train_reader

        return train_reader(cfg, Path(corpus), Path(out_dir))
    torch.set_num_threads(int(cfg["threads"]))
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    corpus, out = Path(corpus), Path(out_dir)
    enc_dir = resolve_encoder(cfg["encoder"])
    _check_layers(cfg, enc_dir)
    tok = load_tokenizer(enc_dir / "tokenizer.json")
    train_ids, val_ids = load_split(corpus, "train"), load_split(corpus, "val")
    check_disjoint(train_ids, val_ids)
    if cfg["max_train_articles"]:
        train_ids = train_ids[: cfg["max_train_articles"]]
    if cfg["max_val_articles"]:
        val_ids = val_ids[: cfg["max_val_articles"]]
    tr_texts, tr_gold = _load(corpus, train_ids)
    va_texts, va_gold = _load(corpus, val_ids)
    infer_cfg = _infer_config(cfg, tok, tr_gold)
    pad_id = infer_cfg["pad_id"]
    examples = build_examples(tr_texts, tr_gold, tok, **_window_args(cfg, infer_cfg))
    _log(f"{len(train_ids)} train / {len(val_ids)} val articles, {len(examples)} windows")
    if cfg["teacher"]:
        examples += _soft_examples(cfg, corpus, tok, infer_cfg)

    dev = _device(cfg)
    out.mkdir(parents=True, exist_ok=True)  # (not before: a mistake leaves no empty folder)
    net = Network(enc_dir, layers=int(cfg["layers"]) or None)
    if cfg["init"]:
        _load_init(net, Path(cfg["init"]))
    net = net.to(dev)
    counts = np.ones(len(TECHNIQUES))
    for rows in tr_gold.values():
        for _, _, t in rows:
            counts[TECHNIQUES.index(t)] += 1
    cw = torch.tensor((counts.max() / counts) ** 0.5, dtype=torch.float32).clamp(max=5.0).to(dev)
    pos_w = torch.tensor(np.clip((counts.sum() / counts) ** 0.5 / 3, 1.0, 8.0), dtype=torch.float32)
    pos_w = pos_w.to(dev)
    opt = adamw(net, cfg)
    bs = int(cfg["batch_size"])
    steps = cfg["epochs"] * ((len(examples) + bs - 1) // bs)
    warm = int(cfg["warmup"] * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / max(warm, 1), max(0.0, (steps - s) / max(steps - warm, 1)))
    )
    ce_si = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 1.0]).to(dev), ignore_index=-100)
    ce_tc = nn.CrossEntropyLoss(weight=cw)
    best_score, best_state, history = -1.0, None, []
    t0, step = time.time(), 0
    for epoch in range(cfg["epochs"]):
        net.train()
        order = np.random.permutation(len(examples))
        for i in range(0, len(order), bs):
            batch = _to(_collate([examples[j] for j in order[i : i + bs]], pad_id), dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(cfg["bf16"])):
                si, tech, hidden = net(batch["ids"], batch["mask"])
                tc = None
                if batch["spans"]:
                    tc = net.span_logits(hidden, tech, [s[:4] for s in batch["spans"]])
            loss = _si_loss(ce_si, si.float(), batch)
            bce = nn.functional.binary_cross_entropy_with_logits(
                tech.float(), batch["tech"], pos_weight=pos_w, reduction="none"
            )
            loss = (
                loss
                + cfg["tech_loss_weight"]
                * (bce.mean(-1) * batch["tmask"]).sum()
                / batch["tmask"].sum()
            )
            if tc is not None:
                y = torch.tensor([s[4] for s in batch["spans"]], device=dev)
                loss = loss + cfg["tc_loss_weight"] * ce_tc(tc.float(), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 25 == 0:
                _log(
                    f"epoch {epoch + 1} step {step}/{steps} loss {loss.item():.4f} "
                    f"({(time.time() - t0) / step:.2f} s/step)"
                )
        minutes_up = bool(cfg["max_minutes"]) and time.time() - t0 > 60 * float(cfg["max_minutes"])
        epochs_up = bool(cfg["stop_after_epochs"]) and epoch + 1 >= int(cfg["stop_after_epochs"])
        last = minutes_up or epochs_up or epoch + 1 == cfg["epochs"]
        if epoch + 1 < int(cfg["val_from_epoch"]) and not last:
            _log(f"epoch {epoch + 1}: not scored on val (val_from_epoch = {cfg['val_from_epoch']})")
            continue
        net.eval()
        tagger = Tagger.from_parts(dict(infer_cfg), tok, torch_backend(net), net.tc_head_arrays())
        outs = _outputs(tagger, va_texts)
        tuned = tune(tagger, outs, va_gold)
        ev = evaluate(tagger, outs, va_gold)
        _log(f"epoch {epoch + 1} val: {ev.line()}  tuned {tuned}")
        sel = ev.si_f1 + ev.joint_f1 + 0.5 * ev.tc_f1
        history.append(
            {
                "epoch": epoch + 1,
                "si_f1": ev.si_f1,
                "tc_f1": ev.tc_f1,
                "joint_f1": ev.joint_f1,
                "tuned": tuned,
            }
        )
        if sel > best_score:
            best_score = sel
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        if minutes_up:
            _log(f"stopping after epoch {epoch + 1}: max_minutes = {cfg['max_minutes']} reached")
            break
        if epochs_up:
            _log(f"stopping after epoch {epoch + 1} of {cfg['epochs']}: stop_after_epochs")
            break
    assert best_state is not None
    if cfg["qat_steps"]:  # rounding-aware fine-tuning for the int8 file (unspin.train.qat)
        from unspin.train.qat import self_distill

        torch.save(best_state, out / "network_fp32.pt")
        net.load_state_dict(best_state)
        self_distill(
            net,
            [e.ids for e in examples],
            pad_id,
            steps=int(cfg["qat_steps"]),
            lr=float(cfg["qat_lr"]),
            batch_size=bs,
            bf16=bool(cfg["bf16"]),
            seed=int(cfg["seed"]),
            log=_log,
        )
        best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    train_minutes = (time.time() - t0) / 60
    torch.save(best_state, out / "network.pt")
    meta = {"config": cfg, "history": history, "train_minutes": round(train_minutes, 1)}
    (out / "train_report.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if finalize_run:
        finalize(out, corpus)
    return out


def finalize(run: str | Path, corpus: str | Path) -> Path:
    """From a run's network.pt: tune decoding and calibrate on val, export and check ONNX."""
    run, corpus = Path(run), Path(corpus)
    meta = json.loads((run / "train_report.json").read_text(encoding="utf-8"))
    cfg = {**DEFAULTS, **meta["config"]}
    torch.set_num_threads(int(cfg["threads"]))
    enc_dir = resolve_encoder(cfg["encoder"])
    tok = load_tokenizer(enc_dir / "tokenizer.json")
    net = Network(enc_dir, layers=int(cfg["layers"]) or None)
    net.load_state_dict(torch.load(run / "network.pt", map_location="cpu"))
    # a run trained on a GPU can be finalized (tuned, exported) on a machine without one
    net.to(_device(cfg) if torch.cuda.is_available() else torch.device("cpu")).eval()
    val_ids = load_split(corpus, "val")
    if cfg["max_val_articles"]:
        val_ids = val_ids[: cfg["max_val_articles"]]
    va_texts, va_gold = _load(corpus, val_ids)
    train_ids = load_split(corpus, "train")
    if cfg["max_train_articles"]:
        train_ids = train_ids[: cfg["max_train_articles"]]
    tr_texts, tr_gold = _load(corpus, train_ids)
    infer_cfg = _infer_config(cfg, tok, tr_gold)
    lexical = None
    if float(cfg["lexical_c"]) > 0:
        from unspin.train.lexical import fit_lexical

        lexical = fit_lexical(tr_texts, tr_gold, c=float(cfg["lexical_c"]))
        _log(f"lexical classifier: {len(lexical.vocab)} terms")
    from unspin.train.export import export, installed_reader

    tagger = Tagger.from_parts(
        infer_cfg, tok, torch_backend(net), net.tc_head_arrays(), lexical, installed_reader()
    )
    outs = _outputs(tagger, va_texts)
    tuned, calib, ev = fit_decoding(tagger, outs, va_gold)
    _log(f"best torch model val: {ev.line()}  tuned {tuned}")
    meta.update(torch_val=ev.__dict__, calibration_report=calib)
    (run / "train_report.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    export(
        net.cpu(),
        tagger.config,
        enc_dir / "tokenizer.json",
        run / "onnx",
        va_texts,
        va_gold,
        lexical=lexical,
    )
    return run
