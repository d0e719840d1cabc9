"""GPU machine script: train students in parallel on one GPU, export each, pack the best.

Reads the carry folder made by ``tools/gpu/prepare.py students`` (MiniLM in fp16, the corpus,
the teacher's soft targets as uint8). Env: CARRY (default .devcarry), OUT (results), DEV
(cuda|cpu), MODE (smoke|full|nosmoke), PLAN (runs for nosmoke, comma-separated), TINY=1 (tiny
settings, to rehearse on CPU), WORK (scratch), DEADLINE (seconds after which runs are killed),
VAL_FROM (val_from_epoch: epochs before it are not scored), KEEP_SMALL=2 (the runner-up small
comes back too), CONT_EPOCHS (the small_mS / two_mS runs' epochs).
See tools/gpu/README.md.
"""

import json
import os
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import numpy as np
from common import (
    Log,
    copy_encoder_files,
    encoder_start,
    pack_state,
    run_main,
    score,
    targets_from_uint8,
    toml_line,
    unpack_corpus,
    wait_all,
)

T0 = time.time()
OUT = Path(os.environ.get("OUT", "/tmp/devout"))
DEV = os.environ.get("DEV", "cuda")
MODE = os.environ.get("MODE", "full")
TINY = os.environ.get("TINY") == "1"
W = Path(os.environ.get("WORK", "/tmp/w"))
DEADLINE = float(os.environ.get("DEADLINE", "520"))
MAX_MIN = float(os.environ.get("MAX_MIN", "5.8"))  # per-run training budget (minutes)
ROOT = Path.cwd()
C = ROOT / os.environ.get("CARRY", ".devcarry")
OUT.mkdir(parents=True, exist_ok=True)
log = Log(OUT / "dev.log")


def setup() -> None:
    unpack_corpus(C, W)
    enc = W / "minilm"
    if not (enc / "model.safetensors").exists():
        from safetensors.torch import load_file, save_file

        src = C / "minilm16"
        copy_encoder_files(src, enc)
        sd = load_file(str(src / "model.safetensors"))
        save_file(
            {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
            str(enc / "model.safetensors"),
        )
    teacher = W / "teacher"
    if not (teacher / "targets-unlabeled-news-400.npz").exists():
        sys.path.insert(0, str(ROOT / "src"))
        from unspin.train.distill import _digest, load_unlabeled

        teacher.mkdir(exist_ok=True)
        (teacher / "config.json").write_text("{}")  # before the targets: a cache must be newer
        z = np.load(C / "targets_u8.npz")
        arrays = {k: targets_from_uint8(z[k]) for k in z.files}
        # under the name the students look for (cached_teacher_targets), so that students
        # started together do not race to rename the old-style file below
        texts = load_unlabeled(W / "unlabeled-news", 3 if TINY else 0)
        name = f"targets-unlabeled-news-{len(texts)}-{_digest(teacher, texts)}.npz"
        np.savez(teacher / name, **arrays)
        np.savez(teacher / "targets-unlabeled-news-400.npz", **arrays)  # other limits (smoke)
    log("setup done")


def write_cfg(name: str, base: str, **over: object) -> Path:
    with open(ROOT / "configs" / base, "rb") as f:
        cfg = tomllib.load(f)
    cfg.update(name=name, device=DEV, threads=2)
    if cfg.get("teacher"):
        cfg["teacher"] = str(W / "teacher")
    if os.environ.get("VAL_FROM"):  # score only the last epochs on val (round 18's lesson)
        cfg["val_from_epoch"] = int(os.environ["VAL_FROM"])
    cfg.update(over)
    if cfg.get("teacher"):  # what the teacher labels (a run without one reads PTC only)
        cfg["unlabeled"] = str(W / "unlabeled-news")
        if TINY:
            cfg["unlabeled_limit"] = 3
    else:
        cfg.pop("unlabeled_limit", None)
    if TINY:
        cfg.update(max_train_articles=2, max_val_articles=3, epochs=1)
    (W / "cfg").mkdir(exist_ok=True)
    p = W / "cfg" / f"{name}.toml"
    p.write_text("\n".join(toml_line(k, v) for k, v in cfg.items()) + "\n")
    return p


def launch(name: str, cfg: Path) -> subprocess.Popen:
    (W / "logs").mkdir(exist_ok=True)
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT / "src"),
        OMP_NUM_THREADS="2",
        UNSPIN_ENCODERS=str(W),  # W/minilm: configs keep encoder = "minilm"
    )
    fin = os.environ.get("FINALIZE", "0") == "1"  # export on this machine (see README)
    code = (
        "import sys; from unspin.train.loop import train; "
        f"train({str(cfg)!r}, {str(W / 'ptc')!r}, {str(W / 'runs' / name)!r}, "
        f"finalize_run={fin})"
    )
    f = open(W / "logs" / f"{name}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=f, stderr=subprocess.STDOUT, env=env
    )


def wait(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, int | None]:
    return wait_all(procs, deadline, log, T0)


def tail(name: str, n: int = 15) -> None:
    p = W / "logs" / f"{name}.log"
    if p.exists():
        for line in p.read_text(errors="replace").splitlines()[-n:]:
            log(f"  {name}| {line}")


def arch(name: str) -> str:
    return name.split("_")[0]  # small_*, fast_*, two_*: one model of each comes back


def encoder_init(layers: int) -> dict:
    """The starting encoder weights, as the run saw them (fp16, widened to fp32)."""
    sys.path.insert(0, str(ROOT / "src"))
    return encoder_start(W / "minilm", layers)


def pack_weights(runs: list[Path]) -> None:
    """The chosen runs' weights (``pack_state``) in one tar, cut in 15 MB parts (8 files and
    64 MB come back per call)."""
    import torch

    (W / "packed").mkdir(exist_ok=True)
    tar = W / "weights.tar"
    with tarfile.open(tar, "w") as t:
        for run in runs:
            cfg = json.loads((run / "train_report.json").read_text())["config"]
            state = torch.load(run / "network.pt", map_location="cpu")
            arrays = pack_state(state, encoder_init(int(cfg.get("layers") or 0)))
            f = W / "packed" / f"{run.name}.npz"
            np.savez_compressed(f, **arrays)
            log(f"{run.name}: {f.stat().st_size / 1e6:.1f} MB")
            t.add(f, arcname=f.name)
    data = tar.read_bytes()
    step = 15_000_000
    for i in range(0, len(data), step):
        (OUT / f"weights.tar.part{i // step}").write_bytes(data[i : i + step])
    log(f"weights.tar: {len(data) / 1e6:.1f} MB in {(len(data) + step - 1) // step} parts")


def pack(names: list[str]) -> None:
    runs = W / "runs"
    table = {}
    for n in names:
        s = score(runs / n)
        table[n] = s
        log(f"RESULT {n}: {s}")
    (W / "results.json").write_text(json.dumps(table, indent=1))
    best: dict[str, str] = {}
    for n, s in table.items():
        if s is None:
            continue
        a = arch(n)
        if a not in best or s["sel"] > table[best[a]]["sel"]:
            best[a] = n
    # KEEP_SMALL=2: the runner-up small comes back too (torch val picks between seeds noisily;
    # three 6-layer packs and one 2-layer pack fit the 64 MB that come back)
    if os.environ.get("KEEP_SMALL") == "2" and "small" in best:
        rest = [n for n, s in table.items() if s and arch(n) == "small" and n != best["small"]]
        if rest:
            best["small2"] = max(rest, key=lambda n: table[n]["sel"])
    log(f"chosen: {best}")
    with tarfile.open(OUT / "reports.tgz", "w:gz") as t:
        t.add(W / "results.json", arcname="results.json")
        for n in names:
            for rel in ("train_report.json", "onnx/export_report.json", "onnx/config.json"):
                p = runs / n / rel
                if p.exists():
                    t.add(p, arcname=f"{n}/{rel}")
            lp = W / "logs" / f"{n}.log"
            if lp.exists():
                t.add(lp, arcname=f"{n}/train.log")
            cp = W / "cfg" / f"{n}.toml"
            if cp.exists():
                t.add(cp, arcname=f"{n}/config.toml")
    try:
        pack_weights([runs / n for n in best.values()])
    except Exception as err:  # never lose the call: fall back to one run in plain fp16
        log(f"pack_weights failed ({err!r}); sending the best small run's fp16 state instead")
        import torch

        n = best.get("small") or next(iter(best.values()))
        state = torch.load(runs / n / "network.pt", map_location="cpu")
        f = W / f"{n}.fp16.pt"
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, f)
        data, step = f.read_bytes(), 15_000_000
        for i in range(0, len(data), step):
            (OUT / f"{n}.fp16.pt.part{i // step}").write_bytes(data[i : i + step])
    log("packed")


def main() -> int:
    log(f"python {sys.version.split()[0]} dev={DEV} mode={MODE} tiny={TINY}")
    import torch

    log(f"torch {torch.__version__} cuda={torch.cuda.is_available()}")
    setup()
    smoke = write_cfg(
        "smoke",
        "small.toml",
        teacher=str(W / "teacher"),
        max_train_articles=2,
        max_val_articles=2,
        epochs=1,
        unlabeled_limit=2,
    )
    rc = {"smoke": 0} if MODE == "nosmoke" else wait({"smoke": launch("smoke", smoke)}, 170)
    tail("smoke", 8)
    if rc.get("smoke") != 0:
        tail("smoke", 60)
        return 1
    log(f"smoke ok: {score(W / 'runs' / 'smoke')}")
    if MODE == "smoke":
        pack_weights([W / "runs" / "smoke"])
    if MODE == "nosmoke":
        keep = os.environ.get("PLAN", "small_d6,fast_d6").split(",")
    if MODE == "smoke":
        return 0
    teacher = str(W / "teacher")
    plan = {
        "small_d3": ("small.toml", {"teacher": teacher, "epochs": 3}),
        "small_d6": ("small.toml", {"teacher": teacher, "epochs": 6}),
        "small_d6lr5": ("small.toml", {"teacher": teacher, "epochs": 6, "lr": 5e-5}),
        "small_p6": ("small.toml", {"teacher": "", "epochs": 6}),  # PTC only
        "fast_d3": ("fast.toml", {}),
        "fast_d6": ("fast.toml", {"epochs": 6}),
        # session 3: 8 epochs, three seeds of small, two of fast, and a 2-layer student; all
        # capped by MAX_MIN (stop after the epoch that passes it), weights come back (FINALIZE=0)
        "small_d8": ("small.toml", {"teacher": teacher, "epochs": 8, "max_minutes": MAX_MIN}),
        "small_d8s7": (
            "small.toml",
            {"teacher": teacher, "epochs": 8, "seed": 7, "max_minutes": MAX_MIN},
        ),
        "small_d8s21": (
            "small.toml",
            {"teacher": teacher, "epochs": 8, "seed": 21, "max_minutes": MAX_MIN},
        ),
        "fast_d8": ("fast.toml", {"epochs": 8, "max_minutes": MAX_MIN}),
        "fast_d8s7": ("fast.toml", {"epochs": 8, "seed": 7, "max_minutes": MAX_MIN}),
        "two_d8": ("fast.toml", {"epochs": 8, "layers": 2, "max_minutes": MAX_MIN}),
        # session 3, second call: the carry's encoder is the shipped small's (prepare.py
        # --encoder-from runs/small): 2-layer students from its bottom layers, and small itself
        # trained further at a low learning rate
        "two_fs13": ("fast.toml", {"epochs": 8, "layers": 2, "max_minutes": MAX_MIN}),
        "two_fs7": ("fast.toml", {"epochs": 8, "layers": 2, "seed": 7, "max_minutes": MAX_MIN}),
        "two_fs21": ("fast.toml", {"epochs": 8, "layers": 2, "seed": 21, "max_minutes": MAX_MIN}),
        "two_fs13lr5": (
            "fast.toml",
            {"epochs": 8, "layers": 2, "lr": 5e-5, "max_minutes": MAX_MIN},
        ),
        "small_c4": (
            "small.toml",
            {"teacher": teacher, "epochs": 4, "lr": 3e-5, "max_minutes": MAX_MIN},
        ),
    }
    # seeded plan names, KIND_eS / KIND_mS with KIND small or two (2 layers) and S the seed:
    # _e (session 6) = a student of the carry's targets (one teacher or an averaged ensemble,
    # tools/gpu/average_targets.py), 8 epochs; _m (session 18) = more epochs (CONT_EPOCHS,
    # default 2) at lr 3e-5 (heads 1e-4) from KIND_eS, trained by an earlier call on this
    # still-warm machine
    for n in keep if MODE == "nosmoke" else []:
        kind, _, rest = n.partition("_")
        if n in plan or kind not in ("small", "two") or rest[:1] not in ("e", "m"):
            continue
        if not rest[1:].isdigit():
            continue
        seed = int(rest[1:])
        over: dict = {"teacher": teacher, "epochs": 8, "seed": seed, "max_minutes": MAX_MIN}
        if rest[0] == "m":
            over.update(
                epochs=int(os.environ.get("CONT_EPOCHS", "2")),
                lr=3e-5,
                head_lr=1e-4,
                init=str(W / "runs" / f"{kind}_e{seed}" / "network.pt"),
            )
        if kind == "two":
            over["layers"] = 2
        plan[n] = ("small.toml" if kind == "small" else "fast.toml", over)
    if MODE == "nosmoke":
        plan = {n: plan[n] for n in keep}
    procs = {n: launch(n, write_cfg(n, b, **o)) for n, (b, o) in plan.items()}
    rcs = wait(procs, DEADLINE)
    for n, r in rcs.items():
        if r != 0:
            tail(n, 25)
    for n in plan:
        tail(n, 3)
    pack(list(plan))
    return 0


if __name__ == "__main__":
    run_main(main, log)
