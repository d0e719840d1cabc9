"""The code style and type checks the project holds itself to (ruff, ruff format, mypy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["src", "tests", "benchmarks", "tools"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_and_format_are_clean() -> None:
    pytest.importorskip("ruff", reason="ruff is in the [test] extra")
    lint = _run(sys.executable, "-m", "ruff", "check", *PATHS)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(sys.executable, "-m", "ruff", "format", "--check", *PATHS)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_finds_no_type_errors() -> None:
    pytest.importorskip("mypy", reason="mypy is in the [test] extra")
    result = _run(sys.executable, "-m", "mypy", "src/unspin")
    assert result.returncode == 0, result.stdout + result.stderr
