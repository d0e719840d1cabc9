"""Output files: devices and pipes are written to, never replaced by a file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from unspin.errors import InputError
from unspin.fileio import check_not_input, check_output, write_atomic


def test_a_named_pipe_is_written_to_and_stays_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text("utf-8")))
    reader.start()
    write_atomic(fifo, "1\t0\t5\n")
    reader.join(timeout=10)
    assert got == ["1\t0\t5\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo"]  # no temporary left


def test_dev_null_is_written_to_not_replaced() -> None:
    if not (os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)):
        pytest.skip("no /dev/null device here")
    assert check_output("/dev/null") == Path("/dev/null")
    write_atomic("/dev/null", "discarded\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_check_not_input(tmp_path: Path) -> None:
    article = tmp_path / "a.txt"
    article.write_text("x", "utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(article.name)
    with pytest.raises(InputError, match="is the input .*a.txt: writing it would replace"):
        check_not_input(link, [article])
    check_not_input(tmp_path / "new.txt", [article])  # a new file: fine
    check_not_input("-", ["-", article])  # standard output


def test_dev_stdout_appends_where_the_shell_appends(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "all.txt"
    out.write_text("kept\n", "utf-8")
    code = "from unspin.fileio import write_atomic; write_atomic('/dev/stdout', 'new\\n')"
    with open(out, "a", encoding="utf-8") as fh:  # the shell's >>
        subprocess.run([sys.executable, "-c", code], stdout=fh, check=True)
    assert out.read_text("utf-8") == "kept\nnew\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.txt"]
    r, w = os.pipe()
    with open(r, encoding="utf-8") as fh_r:
        write_atomic(f"/dev/fd/{w}", "through a pipe\n")
        os.close(w)
        assert fh_r.read() == "through a pipe\n"


def test_a_file_in_the_way_of_the_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x", "utf-8")
    with pytest.raises(InputError, match=r"a.txt is a file, not a folder"):
        check_output(tmp_path / "a.txt" / "x.labels")
    with pytest.raises(InputError, match=r"folder .*missing does not exist; create it first"):
        check_output(tmp_path / "missing" / "x.labels")
