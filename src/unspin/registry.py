"""Model folders: the shipped ones by name, any other by path, each checked before loading.

A model folder holds ``config.json`` (decoding settings, calibration, val scores) and, unless it
is an ensemble (``"members"``), ``model.onnx``, ``tc_head.npz`` and ``tokenizer.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unspin.errors import ModelError

__all__ = [
    "MODELS_DIR",
    "MODEL_FILES",
    "member_folder",
    "model_infos",
    "read_config",
    "resolve_model",
    "shipped_models",
]

MODELS_DIR = Path(__file__).parent / "models"
MODEL_FILES = ("model.onnx", "tc_head.npz", "tokenizer.json")
# what inference reads from config.json without a default
REQUIRED_KEYS = ("max_len", "stride", "cls_id", "sep_id", "pad_id")


def shipped_models() -> dict[str, Path]:
    """Shipped model folders by name."""
    if not MODELS_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(MODELS_DIR.iterdir()) if (p / "config.json").is_file()}


def member_folder(ensemble: Path, member: str) -> Path:
    """An ensemble member: a shipped model's name, or a folder relative to the ensemble's."""
    if member in shipped_models():
        return shipped_models()[member]
    return (ensemble / member).resolve()


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json``, or a ModelError that says what is wrong with it."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} is not a model folder: it has no config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: cannot read the model config ({err})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: the model config must be a JSON object")
    return config


def check_model_folder(folder: Path) -> dict[str, Any]:
    """The folder's config after checking that every file and setting inference needs is
    there; an incomplete folder raises ModelError naming what is missing."""
    config = read_config(folder)
    if config.get("members"):  # null or [] is no ensemble, as the tagger reads it
        _check_members(folder, config)
        return config
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    missing += [f"config key {key!r}" for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise ModelError(
            f"{folder} is an incomplete model folder: missing {', '.join(missing)} "
            "(a model folder is what `unspin train` writes to RUN/onnx)"
        )
    _check_tc_settings(folder, config)
    if config.get("stride", 0) > config.get("max_len", 3) - 2:  # gaps between windows
        raise ModelError(
            f"{folder / 'config.json'}: stride = {config['stride']!r} must be at most max_len - 2"
            f" = {config['max_len'] - 2} (windows hold max_len - 2 article tokens); fix it"
        )
    return config


def _check_members(folder: Path, config: dict[str, Any]) -> None:
    """An ensemble's ``members`` (a list of shipped model names or folders relative to its own,
    never itself) and ``member_weights`` (one number >= 0 per member, a positive sum)."""
    where = folder / "config.json"
    members = config["members"]
    if (
        not isinstance(members, list)
        or not members
        or not all(isinstance(m, str) and m.strip() for m in members)
    ):
        raise ModelError(
            f"{where}: members = {members!r} must be a list of model names or folders, such as "
            '["small", "fast"]'
        )
    for m in members:
        sub = member_folder(folder, m)
        if sub == folder.resolve():
            raise ModelError(f"{where}: member {m!r} is the ensemble itself; name another model")
        if (sub / "config.json").is_file() and read_config(sub).get("members"):
            raise ModelError(
                f"{where}: member {m!r} is an ensemble itself; name its members instead"
            )
    weights = config.get("member_weights")
    if weights is not None and (
        not isinstance(weights, list)
        or len(weights) != len(members)
        or not all(
            isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w < math.inf
            for w in weights
        )
        or sum(weights) <= 0
    ):
        raise ModelError(
            f"{where}: member_weights = {weights!r} must give one number >= 0 per member "
            f"({len(members)}) with a positive sum"
        )


def _whole(minimum: int) -> Callable[[float], bool]:
    """A test for a whole number >= ``minimum`` (as an int or a float such as 4.0)."""
    return lambda v: math.isfinite(v) and v >= minimum and v == int(v)


# settings that must be whole numbers (the TC rule's count; how windows are cut and run), and
# their minimum
_WHOLE = {"tc_repetition_min_count": 1, "window_batch": 1, "max_len": 3, "stride": 1}


def _check_tc_settings(folder: Path, config: dict[str, Any]) -> None:
    """The settings a user may edit by hand (the TC task's, the windows'): numbers in their
    range."""
    rules = {  # key: (test, what it must be)
        **{key: (_whole(low), f"a whole number >= {low}") for key, low in _WHOLE.items()},
        "tc_lexical_weight": (lambda v: 0 <= v < math.inf, "a number >= 0 (0: off)"),
        "tc_reader_weight": (lambda v: 0 <= v < math.inf, "a number >= 0 (0: off)"),
        "tc_repetition_factor": (lambda v: 0 < v < math.inf, "a number > 0 (1: off)"),
        "tc_temperature": (lambda v: 0 < v < math.inf, "a number > 0"),
        "tc_calibration_temperature": (lambda v: 0 < v < math.inf, "a number > 0"),
    }
    for key, (ok, what) in rules.items():
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
            raise ModelError(
                f"{folder / 'config.json'}: {key} = {value!r} must be {what}; fix it or re-run "
                "unspin.train.export.retune on the folder"
            )
        if key in _WHOLE:  # 256.0 is read as 256: it slices and sizes arrays
            config[key] = int(value)


def resolve_model(model: str | Path) -> Path:
    """A model's folder: ``"default"``, a shipped model's name, or a path to a model folder."""
    if not isinstance(model, str | os.PathLike):
        raise ModelError(
            f"a model is a name such as 'fast' (see `unspin models`) or a model folder's path; "
            f"got {type(model).__name__} {model!r}"
        )
    models = shipped_models()
    name = str(model)
    if not isinstance(model, os.PathLike) and not name.strip():
        raise ModelError(
            "the model name is empty: pass a shipped model's name (see `unspin models`), "
            "'default', or a model folder's path"
        )
    # a name is read as --task and --format are (case and blanks aside); a path as it is
    folded = name if isinstance(model, os.PathLike) else name.strip().lower()
    if name == "default" or (folded == "default" and not Path(name).is_dir()):
        defaults = [p for p in models.values() if read_config(p).get("default")]
        if defaults:
            return defaults[0]
        if models:
            return next(iter(models.values()))
        raise ModelError("No model is shipped with this install; reinstall unspin")
    if name in models:
        return models[name]
    path = Path(name)
    if path.is_dir():
        check_model_folder(path)
        return path
    if folded in models:  # --model FAST
        return models[folded]
    known = ", ".join(models) or "none"
    if isinstance(model, os.PathLike) or os.sep in name or "/" in name or name.startswith("."):
        what = "is not a folder" if path.exists() else "does not exist"
        raise ModelError(
            f"model folder {name!r} {what}: pass a folder made by `unspin train` (config.json, "
            f"model.onnx, tokenizer.json, tc_head.npz) or a shipped model's name ({known})"
        )
    raise ModelError(
        f"Unknown model {name!r}: pick one of {known} (see `unspin models`) or pass a model folder"
    )


def model_infos() -> list[dict[str, Any]]:
    """Config of every shipped model plus its size on disk (MB)."""
    infos = []
    for name, folder in shipped_models().items():
        info = {"name": name, **read_config(folder)}
        parts = [folder] + [member_folder(folder, m) for m in info.get("members", [])]
        info["size_mb"] = sum(f.stat().st_size for p in parts for f in p.iterdir()) / 2**20
        infos.append(info)
    return infos
