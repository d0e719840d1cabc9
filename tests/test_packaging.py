"""Packaging: a wheel holds what the checkout holds now, not what an earlier build left."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_build_starts_from_an_empty_build_lib(tmp_path: Path) -> None:
    """setuptools never empties build/lib: without setup.py's hook a model folder or module
    deleted since the last build would be packed into the next wheel."""
    pytest.importorskip("setuptools", minversion="77")  # pyproject's build requirement
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    stale = tmp_path / "build" / "lib" / "unspin"
    (stale / "models" / "gone").mkdir(parents=True)
    (stale / "models" / "gone" / "config.json").write_text("{}", encoding="utf-8")
    (stale / "removed_module.py").write_text("", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert not (stale / "models" / "gone").exists()
    assert not (stale / "removed_module.py").exists()
    assert (stale / "models" / "small" / "model.onnx").is_file()  # what the checkout has
    assert (stale / "cli.py").is_file()


def test_python_dash_m_unspin_is_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "unspin", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    commands = [line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines()[1:]]
    assert commands[:2] == ["analyze", "predict"]  # the main job first
    assert sorted(commands) == ["analyze", "models", "predict", "score", "train"]
