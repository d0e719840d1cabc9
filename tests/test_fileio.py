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


@pytest.mark.parametrize("name", ["/dev/stdout", "//dev/stdout", "link", "all.txt"])
def test_standard_output_appends_where_the_shell_appends(name: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    if not os.path.exists("/dev/stdout"):
        pytest.skip("no /dev/stdout here")
    out = tmp_path / "all.txt"
    out.write_text("kept\n", "utf-8")
    (tmp_path / "link").symlink_to("/dev/stdout")
    code = f"from unspin.fileio import write_atomic; write_atomic({name!r}, 'new \\u2014\\n')"
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}  # output files are UTF-8 all the same
    with open(out, "a", encoding="utf-8") as fh:  # the shell's >>
        subprocess.run([sys.executable, "-c", code], stdout=fh, check=True, cwd=tmp_path, env=env)
    assert out.read_text("utf-8") == "kept\nnew \u2014\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.txt", "link"]


def test_standard_input_read_from_a_file_is_never_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    if not os.path.exists("/dev/stdin"):
        pytest.skip("no /dev/stdin here")
    article = tmp_path / "article.txt"
    article.write_text("The article.\n", "utf-8")
    code = "from unspin.fileio import check_output; check_output('/dev/stdin')"
    with open(article, encoding="utf-8") as fh:
        result = subprocess.run(
            [sys.executable, "-c", code], stdin=fh, capture_output=True, text=True, check=False
        )
    assert result.returncode == 1 and "it is standard input" in result.stderr
    assert article.read_text("utf-8") == "The article.\n"
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
