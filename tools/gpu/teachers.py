"""GPU machine script: a teacher ensemble. Trains several MPNet teachers (tools/gpu/teacher.py,
the configs/base-6ep.toml recipe with different seeds) in parallel on one GPU; each labels the
unlabeled news. Their soft targets come back in one tar (averaged here, with earlier teachers'
if wanted: tools/gpu/average_targets.py).

Env: CARRY (default .devcarry2, from ``prepare.py teacher``), OUT, DEV, SEEDS (comma-separated,
default 7,21,42), DEADLINE (seconds after which teachers still running are killed), MAXMIN (per
teacher), TINY=1 (rehearse on CPU), WORK. See tools/gpu/README.md.
"""

import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from common import wait_all

T0 = time.time()
OUT = Path(os.environ.get("OUT", "/tmp/devout2"))
W = Path(os.environ.get("WORK", "/tmp/w2"))
SEEDS = [int(s) for s in os.environ.get("SEEDS", "7,21,42").split(",")]
DEADLINE = float(os.environ.get("DEADLINE", "330"))
HERE = Path(__file__).resolve().parent
OUT.mkdir(parents=True, exist_ok=True)
SCRATCH = W / "tout"


def log(msg: str) -> None:
    line = f"[{time.time() - T0:6.1f}s] {msg}"
    print(line, flush=True)
    with open(OUT / "teachers.log", "a") as f:
        f.write(line + "\n")


def run_teacher(env: dict[str, str]) -> subprocess.Popen:
    name = env.get("NAME", "setup")
    (W / "logs").mkdir(parents=True, exist_ok=True)
    f = open(W / "logs" / f"{name}.log", "w")  # noqa: SIM115 - the child writes it
    return subprocess.Popen(
        [sys.executable, str(HERE / "teacher.py")],
        stdout=f,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OUT": str(SCRATCH), **env},
    )


def main() -> int:
    rc = run_teacher({"SETUP_ONLY": "1"}).wait()
    log(f"setup rc={rc}")
    if rc != 0:
        print((W / "logs" / "setup.log").read_text(errors="replace")[-3000:])
        return 1
    threads = str(max(2, 14 // len(SEEDS)))
    procs = {
        s: run_teacher({"NAME": f"t{s}", "SEED": str(s), "THREADS": threads, "TF32": "1"})
        for s in SEEDS
    }
    done = wait_all({f"t{s}": p for s, p in procs.items()}, DEADLINE, log, T0)
    for s in SEEDS:
        lines = (W / "logs" / f"t{s}.log").read_text(errors="replace").splitlines()
        keep = [x for x in lines if " val: " in x or "FAILED" in x or "Error" in x]
        for line in keep + lines[-3:]:
            log(f"  t{s}| {line}")
    with tarfile.open(OUT / "teachers.tar", "w") as t:
        for f in sorted(SCRATCH.iterdir()):
            t.add(f, arcname=f.name)
    log(f"teachers.tar {(OUT / 'teachers.tar').stat().st_size / 1e6:.1f} MB")
    return 0 if 0 in done.values() else 1


if __name__ == "__main__":
    sys.exit(main())
