"""Training configs (TOML): defaults, and checks that name the file, the key and the fix.

No torch here: a broken config fails in a second, before the corpus or any weights load.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from unspin.errors import InputError
from unspin.evaluate import JOINT_TUNERS

__all__ = ["DEFAULTS", "ENSEMBLE_KEYS", "PTC_TRAIN", "load_config"]

DEFAULTS: dict[str, Any] = {
    "name": "model",
    # "tagger": the network of a model folder; "reader": the TC task's span reader
    # (unspin.reader), written to RUN/reader
    "task": "tagger",
    "encoder": "minilm",
    "max_len": 256,
    "stride": 128,
    "train_stride": 192,
    # the training windows' length; 0: max_len (which is then also the length the model reads
    # articles in; a longer max_len than the network trained on gives it more context)
    "train_max_len": 0,
    "epochs": 3,
    "lr": 5e-5,
    "head_lr": 1e-3,
    "batch_size": 8,
    "warmup": 0.1,
    "weight_decay": 0.01,
    "seed": 13,
    "bf16": False,
    "threads": 2,
    "tc_loss_weight": 1.0,
    "tech_loss_weight": 1.0,
    "max_train_articles": 0,
    "max_val_articles": 0,
    "layers": 0,
    "quantize": "all",
    # how val tuning sets the joint task's cut: its own threshold and gap plus technique-head
    # spans ("own_cut"), or SI's threshold and gap ("si_cut"; unspin.evaluate.tune)
    "joint_tuner": "own_cut",
    # distillation / self-training: a teacher (a model folder such as runs/base6/onnx, or a
    # shipped model's name) labels the unlabeled articles (default
    # ../shared/data/unlabeled-news; "ptc:train": the training articles themselves) with soft
    # targets; a list of teachers is an ensemble whose targets are averaged
    "teacher": "",
    "unlabeled": "",
    "unlabeled_limit": 0,
    # "cpu", "cuda" or "auto" (cuda when available); export and int8 tuning always run on CPU
    # (a span reader too: it trains there and exports on CPU)
    "device": "cpu",
    # stop after the epoch that passes this many minutes of training (0: no limit)
    "max_minutes": 0.0,
    # stop after this many epochs, the learning-rate schedule still planned for `epochs`
    # (0: run them all); with max_minutes, whichever comes first
    "stop_after_epochs": 0,
    # score epochs on val (tuned decoding, the selection rule) only from this one on, and always
    # the last that runs: each scoring tunes on the CPU, which took 70-80 s an epoch on a
    # GPU machine whose MiniLM epoch trained in 20-40 s (round 18)
    "val_from_epoch": 1,
    # start from a trained run's network.pt (every weight, heads included; same encoder, at
    # least `layers` layers) instead of the pretrained encoder: to train a shipped model
    # further, or, from a deeper run, to keep its bottom `layers` layers (layer dropping)
    "init": "",
    # the lexical span classifier (unspin.lexical) fitted on the training spans beside the
    # network, with this inverse L2 strength (0: none)
    "lexical_c": 10.0,
    # span reader (task = "reader"): tokens of context kept before and after the span, of the
    # span itself (longer ones keep their first and last halves), characters of text read on
    # each side before tokenizing
    "left_tokens": 48,
    "right_tokens": 48,
    "span_tokens": 64,
    "context_chars": 400,
    # span reader: a teacher's soft targets to train on beside the gold spans, a .npz of
    # "<article id>/spans" (n, 2) and "<article id>/p" (n, 14) for articles of `unlabeled`
    # (default ../shared/data/unlabeled-news), as tools/label_spans.py writes it
    # (unspin.train.soft_targets)
    "soft_targets": "",
    # rounding-aware self-distillation after the epochs (unspin.train.qat): this many steps of
    # the network, its Linear layers rounded as in the int8 file, towards its own fp32 outputs
    # on the training windows (0: none); the fp32 network stays beside it as network_fp32.pt
    "qat_steps": 0,
    "qat_lr": 2e-5,
}
PTC_TRAIN = "ptc:train"  # `unlabeled` value: soft targets on the training split's articles
# an ensemble config (members = shipped models or model folders) only tunes and calibrates
ENSEMBLE_KEYS: dict[str, type] = {"members": list, "member_weights": list}
CHOICES = {
    "device": ("cpu", "cuda", "auto"),
    "quantize": ("all", "embeddings", "ln_fp32"),
    "joint_tuner": JOINT_TUNERS,
    "task": ("tagger", "reader"),
}
POSITIVE = (
    "max_len",
    "stride",
    "train_stride",
    "epochs",
    "lr",
    "batch_size",
    "threads",
    "val_from_epoch",
    "span_tokens",
    "context_chars",
    "qat_lr",
)


# counts where 0 means "all" (or, for layers, the encoder's own number)
NON_NEGATIVE = ("max_train_articles", "max_val_articles", "unlabeled_limit", "layers", "qat_steps")


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _check(path: Path, raw: dict[str, Any]) -> None:
    known = [*DEFAULTS, *ENSEMBLE_KEYS]
    for key, value in raw.items():
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InputError(
                f"config {path}: unknown key {key!r}{hint}; known keys: {', '.join(sorted(known))}"
            )
        want = ENSEMBLE_KEYS.get(key) or type(DEFAULTS[key])
        ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
        if key == "teacher" and isinstance(value, list):  # an ensemble of teachers
            ok = bool(value) and all(isinstance(v, str) and v for v in value)
            if not ok:
                raise InputError(
                    f"config {path}: teacher = {value!r}: a list of teachers needs one or more "
                    'model folders or shipped model names, e.g. teacher = ["runs/base6/onnx", '
                    '"runs/base6s7/onnx"]'
                )
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True  # 1 for 1.0
        if not ok:
            example = DEFAULTS.get(key, [])
            raise InputError(
                f"config {path}: {key} = {value!r} should be {_kind(example)}, "
                f"e.g. {key} = {tomllib_repr(example)}"
            )
        if key in CHOICES and value not in CHOICES[key]:
            raise InputError(
                f"config {path}: {key} = {value!r}; use one of {', '.join(CHOICES[key])}"
            )
        if key in POSITIVE and value <= 0:
            raise InputError(f"config {path}: {key} = {value!r} must be above 0")
        if key in ("left_tokens", "right_tokens", *NON_NEGATIVE) and value < 0:
            raise InputError(f"config {path}: {key} = {value!r} must be 0 or more")
        if key == "lexical_c" and not 0 <= value < float("inf"):
            raise InputError(
                f"config {path}: lexical_c = {value!r} must be a number >= 0 (0: no lexical "
                "classifier)"
            )
    if raw.get("init") and not Path(raw["init"]).is_file():
        raise InputError(
            f"config {path}: init = {raw['init']!r}: no such file (a run's network.pt: train "
            "that run first, e.g. configs/fast.toml before configs/fast-more.toml)"
        )
    _check_teachers(path, raw)
    _check_task(path, raw)
    _check_windows(path, raw)
    if "name" not in raw:
        raise InputError(f'config {path}: set at least name = "..." (see configs/ for examples)')


READER_KEYS = ("left_tokens", "right_tokens", "span_tokens", "context_chars")
# what the span reader's training (unspin.train.reader) does not read
TAGGER_ONLY = (
    *("max_len", "stride", "train_stride", "train_max_len", "tc_loss_weight", "tech_loss_weight"),
    "layers",
    *("quantize", "joint_tuner", "teacher", "unlabeled_limit"),
    *("stop_after_epochs", "init", "lexical_c", "qat_steps", "qat_lr", *ENSEMBLE_KEYS),
)
MAX_POSITIONS = 512  # MiniLM's and MPNet's position embeddings
# what an ensemble's build (unspin.train.ensemble) reads
ENSEMBLE_READS = (
    *("name", "task", "members", "member_weights", "threads", "joint_tuner"),
    "max_val_articles",
)


def _check_task(path: Path, raw: dict[str, Any]) -> None:
    """Keys that the config's task would silently ignore, and a span reader's input length."""
    if raw.get("task", "tagger") != "reader":
        unused = [k for k in raw if k in (*READER_KEYS, "soft_targets")]
        if unused:
            raise InputError(
                f"config {path}: {', '.join(unused)} "
                f"{'only applies' if len(unused) == 1 else 'only apply'} to a span reader "
                '(task = "reader"); remove them from a tagger\'s config'
            )
        if raw.get("members"):
            unused = [k for k in raw if k not in ENSEMBLE_READS]
            if unused:
                raise InputError(
                    f"config {path}: {', '.join(unused)} "
                    f"{'does' if len(unused) == 1 else 'do'} nothing for an ensemble (members = "
                    f"[...]: no training, only decoding tuned on val); it reads "
                    f"{', '.join(ENSEMBLE_READS)}"
                )
        elif not raw.get("teacher"):  # (a key left at its default is harmless)
            unused = [k for k in ("unlabeled", "unlabeled_limit") if raw.get(k, DEFAULTS[k])]
            if unused:
                raise InputError(
                    f"config {path}: {', '.join(unused)} only "
                    f"{'applies' if len(unused) == 1 else 'apply'} with a teacher (the articles "
                    "it labels); set teacher to a model folder or a shipped model's name "
                    '(e.g. teacher = "small"), or remove them'
                )
        return
    unused = [k for k in raw if k in TAGGER_ONLY]
    if unused:
        raise InputError(
            f"config {path}: {', '.join(unused)} {'does' if len(unused) == 1 else 'do'} nothing "
            "for a span reader "
            '(task = "reader"); remove them (see configs/reader.toml)'
        )
    soft = raw.get("soft_targets")
    if soft and not Path(soft).is_file():
        raise InputError(
            f"config {path}: soft_targets = {soft!r}: no such file (write it with "
            "tools/label_spans.py, or remove the key to train on gold spans only)"
        )
    if "unlabeled" in raw and not soft:
        raise InputError(
            f"config {path}: unlabeled only applies to a span reader with soft_targets (the "
            "folder its articles come from); remove it or set soft_targets"
        )
    if raw.get("unlabeled") == PTC_TRAIN:
        raise InputError(
            f'config {path}: unlabeled = "{PTC_TRAIN}" is for taggers; a span reader\'s '
            "soft_targets come from a folder of articles (tools/label_spans.py --unlabeled)"
        )
    sizes = {k: int(raw.get(k, DEFAULTS[k])) for k in READER_KEYS}
    if sizes["span_tokens"] < 2:
        raise InputError(f"config {path}: span_tokens must be at least 2")
    length = sizes["left_tokens"] + sizes["span_tokens"] + sizes["right_tokens"] + 4
    if length > MAX_POSITIONS:
        raise InputError(
            f"config {path}: left_tokens + span_tokens + right_tokens + 4 markers = {length} "
            f"tokens, more than the encoder's {MAX_POSITIONS} positions; lower them"
        )


def _check_teachers(path: Path, raw: dict[str, Any]) -> None:
    """Each teacher is a shipped model's name or a model folder that exists now (found after
    the corpus has loaded, a wrong path used to fail late)."""
    from unspin.registry import shipped_models

    teachers = raw.get("teacher") or []
    shipped = shipped_models()
    for teacher in [teachers] if isinstance(teachers, str) else teachers:
        if teacher not in shipped and not (Path(teacher) / "config.json").is_file():
            raise InputError(
                f"config {path}: teacher = {teacher!r} is neither a shipped model "
                f"({', '.join(shipped)}) nor a model folder (with config.json): train the "
                "teacher first, e.g. unspin train configs/base-6ep.toml --out runs/base6 for "
                'teacher = "runs/base6/onnx"'
            )


def _check_windows(path: Path, raw: dict[str, Any]) -> None:
    """A tagger's windows hold ``max_len`` - 2 tokens (with [CLS] and [SEP]); a stride past
    that skips tokens (training on gaps, or a model folder that will not load), and the
    encoders have 512 positions. Ensemble and reader keys are checked elsewhere."""
    if raw.get("task", "tagger") == "reader" or raw.get("members"):
        return
    max_len = int(raw.get("max_len", DEFAULTS["max_len"]))
    train_max_len = int(raw.get("train_max_len", DEFAULTS["train_max_len"])) or max_len
    for key, value in (("max_len", max_len), ("train_max_len", train_max_len)):
        if not 3 <= value <= MAX_POSITIONS:
            raise InputError(
                f"config {path}: {key} = {value} must be from 3 to {MAX_POSITIONS} (the "
                "encoder's positions)" + ("; 0 means max_len" if key == "train_max_len" else "")
            )
    for key, length, length_key in (
        ("stride", max_len, "max_len"),
        ("train_stride", train_max_len, "train_max_len" if "train_max_len" in raw else "max_len"),
    ):
        stride = int(raw.get(key, DEFAULTS[key]))
        if stride > length - 2:
            where = "" if key in raw else " (its default)"
            raise InputError(
                f"config {path}: {key} = {stride}{where} must be at most {length_key} - 2 = "
                f"{length - 2}, or windows skip tokens; set {key} = {max(1, (length - 2) // 2)} "
                "for half-overlapping windows"
            )


def tomllib_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def load_config(path: str | Path) -> dict[str, Any]:
    """The config at ``path`` over ``DEFAULTS``; a malformed file, an unknown key (a typo would
    silently train with the default) or a value of the wrong type raises ``InputError``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"config {path} not found (see configs/ for examples)") from None
    except IsADirectoryError:
        raise InputError(
            f"config {path} is a folder; pass a .toml file such as configs/small.toml"
        ) from None
    except OSError as err:
        raise InputError(f"config {path}: cannot read ({err.strerror or err})") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(
            f"config {path}: not UTF-8 at byte {err.start}; re-save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"config {path}: not valid TOML: {err}") from None
    _check(path, raw)
    return {**DEFAULTS, **raw}
