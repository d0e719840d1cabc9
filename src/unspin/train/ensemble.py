"""An ensemble of shipped models: no training, only decoding tuned and calibrated on val.

`unspin train configs/ensemble.toml` with ``members = ["small", "fast"]`` writes
``OUT/onnx/config.json`` (and ``export_report.json``); ``ship()`` copies it into the package.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from unspin.corpus import load_split
from unspin.tagger import Tagger

__all__ = ["build_ensemble"]


def build_ensemble(cfg: dict[str, Any], corpus: Path, out: Path) -> Path:
    from unspin.train.loop import _load, _log, fit_decoding, save_config

    members = [Tagger(m, threads=int(cfg["threads"])) for m in cfg["members"]]
    config: dict[str, Any] = {
        "name": cfg["name"],
        "split_sentences": True,
        "members": list(cfg["members"]),
        **({"member_weights": list(cfg["member_weights"])} if cfg.get("member_weights") else {}),
        "joint_tuner": cfg["joint_tuner"],
        "encoder": members[0].config.get("encoder"),
        "techniques": members[0].config.get("techniques"),
    }
    tagger = Tagger.ensemble(config, members)
    val_ids = load_split(corpus, "val")
    if cfg["max_val_articles"]:
        val_ids = val_ids[: cfg["max_val_articles"]]
    texts, gold = _load(corpus, val_ids)
    t0 = time.time()
    outs = {aid: tagger.outputs(t) for aid, t in texts.items()}
    report: dict[str, Any] = {"members": {m.name: m.config.get("val") for m in members}}
    report["tuned"], report["calibration"], ev = fit_decoding(tagger, outs, gold)
    report["val"] = ev.__dict__
    report["val_seconds"] = round(time.time() - t0, 1)
    _log(f"ensemble {config['members']} val: {ev.line()}  tuned {report['tuned']}")
    folder = out / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    save_config(tagger, ev, folder)
    (folder / "export_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return out
