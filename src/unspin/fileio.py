"""Output files: checked before any work is done, written atomically with normal permissions."""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from unspin.errors import InputError

__all__ = ["STDOUT", "check_output", "check_not_input", "write_atomic"]


STDOUT = "-"


def check_output(path: str | os.PathLike[str]) -> Path:
    """Fail early, before a long run, when ``path`` cannot be written: its folder must exist
    and be writable, and ``path`` must not be a folder. The string ``"-"`` is standard output
    (a ``Path("-")`` is a file of that name). A symbolic link is written through, to the file
    it points at."""
    if isinstance(path, str) and path == STDOUT:  # the string "-" only: Path("./-") is a file
        return Path(STDOUT)
    given = Path(path)
    if _descriptor(given) is not None:  # /dev/stdout and the like: the stream, as it is
        return given
    if given.is_dir():
        raise InputError(f"cannot write {given}: it is a folder; give a file name")
    if _special(given):  # /dev/null, /dev/stdout, a pipe: written to directly, as it is
        if not os.access(given, os.W_OK):
            raise InputError(f"cannot write {given}: no permission to write it")
        return given
    path = given
    if given.is_symlink():
        try:
            path = Path(os.path.realpath(given, strict=True))
        except FileNotFoundError:  # a dangling link: create the file it names
            path = Path(os.path.realpath(given))
        except OSError as err:
            why = "it is a symbolic link loop" if err.errno == errno.ELOOP else err.strerror
            raise InputError(f"cannot write {given}: {why}") from None
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write {path}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: no permission to write in {folder}")
    return path


def _descriptor(path: Path) -> int | None:
    """The open file descriptor that ``path`` names: ``/dev/fd/N`` or ``/proc/self/fd/N``, or
    by file identity standard output or error (``/dev/stdout``, a link to it, or the very file
    the shell redirected it to). Such a path is written through the open stream: opening it anew
    would truncate a file the shell opened for appending (``>>``), and an atomic replacement
    would replace the file behind it. None for any other path. Standard input read from a file
    raises InputError: writing it would replace the article being read."""
    name = str(path)
    if name.startswith("/"):
        name = "/" + os.path.normpath(name).lstrip("/")  # "//dev/fd/3" too
        for prefix in ("/dev/fd/", "/proc/self/fd/"):
            if name.startswith(prefix) and name[len(prefix) :].isdecimal():
                number = int(name[len(prefix) :])
                if number == 0:
                    raise InputError(f"cannot write {path}: it is standard input")
                return number
    try:
        st = os.stat(path)
    except OSError:
        return None
    for fd in (1, 2, 0):
        try:
            fs = os.fstat(fd)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (fs.st_dev, fs.st_ino):
            continue
        if fd == 0 and stat.S_ISREG(fs.st_mode):
            raise InputError(
                f"cannot write {path}: it is standard input, the text being read; choose "
                "another output file"
            )
        if fd != 0:
            return fd
    return None


def _write_stream(stream: TextIO, text: str) -> None:
    """``text`` in UTF-8, as every output file is, whatever the locale's encoding."""
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a replaced stream (tests, notebooks): it takes text
        stream.write(text)
        stream.flush()
    else:
        buffer.write(text.encode("utf-8"))
        buffer.flush()


def _special(path: Path) -> bool:
    """An existing output that is not a regular file (a device such as /dev/null or
    /dev/stdout, a named pipe): replacing it with a file would break it, so it is written
    to directly."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def check_not_input(output: str | os.PathLike[str], inputs: list[str | os.PathLike[str]]) -> None:
    """Refuse an output file that is one of the inputs (an article, a template): writing it
    would replace the input with the results. ``"-"`` and URLs are not files."""
    if output == STDOUT or not os.path.isfile(output):
        return
    for source in inputs:
        if source == STDOUT or "://" in str(source) or not os.path.exists(source):
            continue
        if os.path.samefile(output, source):
            raise InputError(
                f"-o {output} is the input {source}: writing it would replace the input; "
                "choose another output file"
            )


def _mode_for(path: Path) -> int:
    """An existing file keeps its mode; a new one gets 0666 less the umask (read without
    changing it where /proc allows: os.umask is process-wide, other threads may write)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and ``os.replace``: readers see
    the old file or the whole new one, never a part. The file gets the usual permissions
    (0666 less the umask), not the temporary file's 0600. The string ``"-"`` writes to
    standard output."""
    to_stdout = isinstance(path, str) and path == STDOUT
    path = check_output(path)
    if to_stdout:
        _write_stream(sys.stdout, text)
        return
    fd = _descriptor(path)
    if fd in (1, 2):
        _write_stream(sys.stdout if fd == 1 else sys.stderr, text)
        return
    if fd is not None or _special(path):  # another open descriptor, a device, a pipe: as is
        try:
            target: int | Path = os.dup(fd) if fd is not None else path
            with open(target, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as err:
            raise InputError(f"cannot write {path}: {err.strerror or err}") from None
        return
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
