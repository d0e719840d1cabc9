"""Read and write the Propaganda Techniques Corpus (PTC): articles, label files, splits.

Offsets are Unicode code points into the article text exactly as stored on disk: articles
are decoded as plain UTF-8 with newline translation switched off, so a leading byte-order
mark and every ``\\r`` count as characters (as in the official SemEval-2020 Task 11 data).

Label files are tab separated, one span per row, end offset exclusive::

    si:        <article id> TAB <start> TAB <end>
    tc/joint:  <article id> TAB <technique> TAB <start> TAB <end>

Every mistake in a file raises :class:`~unspin.errors.CorpusError` naming the file, the
line and how to fix it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from unspin.errors import CorpusError
from unspin.fileio import write_atomic
from unspin.techniques import TECHNIQUES

__all__ = [
    "Label",
    "Task",
    "TASKS",
    "ENV_CORPUS_DIR",
    "read_article",
    "read_articles",
    "read_labels",
    "write_labels",
    "load_split",
    "default_corpus_dir",
    "find_corpus",
    "gold_labels",
    "load_texts_and_gold",
]

Task = Literal["si", "tc", "joint"]
TASKS: tuple[str, ...] = ("si", "tc", "joint")
SPLITS: tuple[str, ...] = ("train", "val")
ENV_CORPUS_DIR = "UNSPIN_PTC_DIR"
UNKNOWN_TECHNIQUE = "?"

_ARTICLE_FILE = re.compile(r"^article(?P<id>[^\s/\\]+)\.txt$")
# a name that was probably meant as one (Article5.txt, article 5.txt, article5.TXT, an id
# left out: article.txt): refused, not skipped; an index such as Articles.txt is skipped
_NEAR_ARTICLE_FILE = re.compile(r"^article(?:[\s_-]*\d.*)?\.txt$", re.IGNORECASE)
_TECHNIQUE_SET = frozenset(TECHNIQUES)


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled span of an article: ``text[start:end]`` (code points, end exclusive).

    ``technique`` is ``None`` for a span-identification (SI) label and for a row of a TC
    template whose technique column is ``?``.
    """

    article_id: str
    start: int
    end: int
    technique: str | None = None
    #: "FILE, line N" for a label read from a file (error messages); not part of its value
    where: str | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------- articles


def read_article(path: str | os.PathLike[str]) -> str:
    """Return the text of one article file, unchanged (a BOM and ``\\r`` are kept)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise CorpusError(f"{path}: article file not found; check the path.") from None
    except IsADirectoryError:
        raise CorpusError(
            f"{path}: is a folder, not an article file; use read_articles() for folders."
        ) from None
    except UnicodeDecodeError as err:
        if err.object[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise CorpusError(
                f"{path}: UTF-16 text (it starts with a UTF-16 byte-order mark); re-save the "
                "article as UTF-8"
            ) from None
        if b"\x00" in err.object:
            raise _binary(path) from None
        raise CorpusError(
            f"{path}: not valid UTF-8 at byte offset {err.start} "
            f"(byte 0x{err.object[err.start]:02x}); re-save the article as UTF-8"
        ) from None
    except OSError as err:
        raise CorpusError(f"{path}: cannot read article ({err.strerror}).") from None
    if "\x00" in text:  # as `unspin analyze` reads a file: NUL bytes are not in a text
        raise _binary(path)
    return text


def _binary(path: Path) -> CorpusError:
    return CorpusError(
        f"{path}: looks like a binary file (it contains NUL bytes), not an article; move it "
        "out of the folder or re-save it as UTF-8 text"
    )


def read_articles(
    folder: str | os.PathLike[str], *, max_bytes: int | None = None
) -> dict[str, str]:
    """Return ``{article id: text}`` for every ``article<ID>.txt`` file in ``folder``; with
    ``max_bytes``, a larger file is refused (by its size, before anything is read)."""
    folder = Path(folder)
    if folder.is_file():
        raise CorpusError(
            f"{folder}: is a file, not a folder; pass the folder that holds article<ID>.txt "
            "files (for one article, use `unspin analyze FILE`)."
        )
    if not folder.is_dir():
        raise CorpusError(
            f"{folder}: article folder not found; pass a folder of article<ID>.txt files."
        )
    articles: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        match = _ARTICLE_FILE.match(path.name)
        if not match and _NEAR_ARTICLE_FILE.match(path.name) and not path.is_dir():
            raise CorpusError(
                f"{path}: not read, as article files are named exactly article<ID>.txt (lower "
                "case, no spaces); rename it or move it out of the folder"
            )
        if match and path.is_symlink() and not path.exists():
            raise CorpusError(f"{path}: a link to a file that does not exist; fix or remove it")
        if match and path.is_file():
            try:
                path.name.encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes, kept as lone surrogates
                shown = os.fsencode(path).decode("utf-8", "replace")
                raise CorpusError(
                    f"{shown}: the file name is not valid UTF-8, so its article id cannot be "
                    "written to a label file; rename it (for example article123.txt)"
                ) from None
            if max_bytes is not None and (size := path.stat().st_size) > max_bytes:
                raise CorpusError(
                    f"{path}: {size:,} bytes, larger than the {max_bytes:,}-byte "
                    f"({max_bytes / 2**20:g} MiB) limit for an article; split it into smaller "
                    "article files or leave it out"
                )
            articles[match.group("id")] = read_article(path)
    if not articles:
        raise CorpusError(
            f"{folder}: no article<ID>.txt files in this folder; pass the folder that holds "
            "them (files named like article123.txt; for one text of any name, use `unspin "
            "analyze FILE`)."
        )
    return articles


# --------------------------------------------------------------------------- labels


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise CorpusError(f"unknown task {task!r}; use one of: {', '.join(TASKS)}.")


def _technique_hint(name: str) -> str:
    close = difflib.get_close_matches(name, TECHNIQUES, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{hint} Valid techniques: {', '.join(TECHNIQUES)}."


def _parse_offset(value: str, what: str, where: str) -> int:
    try:
        if not _is_int(value):  # int() would also take "+5", "1_0" and non-ASCII digits
            raise ValueError(value)
        offset = int(value)
    except ValueError:
        raise CorpusError(
            f"{where}: {what} offset {value!r} is not an integer; offsets are character "
            "positions such as 120."
        ) from None
    if offset < 0:
        raise CorpusError(f"{where}: {what} offset {offset} is negative; offsets start at 0.")
    return offset


def _parse_row(
    line: str,
    where: str,
    task: str,
    allow_unknown_technique: bool,
) -> Label:
    # a trailing tab or blank ends the row; it does not start another column
    fields = [f.strip() for f in line.rstrip().split("\t")]
    want = 3 if task == "si" else 4
    if len(fields) != want:
        layout = (
            "<article id> TAB <start> TAB <end>"
            if task == "si"
            else "<article id> TAB <technique> TAB <start> TAB <end>"
        )
        hint = ""
        if len(line.split()) == want:
            hint = " Separate the columns with TAB characters, not spaces."
        elif task == "si" and len(fields) == 4:
            hint = " This looks like a TC/joint file (it has a technique column)."
        elif task != "si" and len(fields) == 3 and _is_int(fields[1]):
            hint = " This looks like an SI file (it has no technique column)."
        elif task != "si" and len(fields) == 3:
            hint = " A column is missing: it has a technique but not both offsets."
        raise CorpusError(
            f"{where}: expected {want} tab-separated columns for task {task} ({layout}), "
            f"found {len(fields)}.{hint}"
        )
    article_id = fields[0]
    if not article_id:
        raise CorpusError(f"{where}: the article id (first column) is empty.")
    technique: str | None = None
    if task != "si":
        technique = fields[1]
        if technique == UNKNOWN_TECHNIQUE and allow_unknown_technique:
            technique = None
        elif technique == UNKNOWN_TECHNIQUE:
            raise CorpusError(
                f"{where}: technique is '?' (a TC template row); fill in a technique name."
                f"{_technique_hint('')}"
            )
        elif technique not in _TECHNIQUE_SET and _is_int(technique):  # id, start, end, name?
            raise CorpusError(
                f"{where}: unknown technique {technique!r}: the second column is a number. The "
                "columns go in this order: article id, technique, start, end."
            )
        elif technique not in _TECHNIQUE_SET:
            raise CorpusError(
                f"{where}: unknown technique {technique!r}.{_technique_hint(technique)}"
            )
    start = _parse_offset(fields[-2], "start", where)
    end = _parse_offset(fields[-1], "end", where)
    if start >= end:
        raise CorpusError(
            f"{where}: start {start} is not before end {end}; the end offset is exclusive "
            "and a span must cover at least one character."
        )
    return Label(article_id, start, end, technique)


def _is_int(field: str) -> bool:
    return field.isascii() and field.lstrip("-").isdigit()


def _label_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".labels" and p.is_file())
        if not files:
            raise CorpusError(
                f"{path}: no .labels files in this folder; pass a labels file or a folder "
                "of per-article .labels files."
            )
        return files
    if not path.exists():
        raise CorpusError(f"{path}: labels file or folder not found; check the path.")
    return [path]


def _read_label_file(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path}: not valid UTF-8 at byte offset {err.start} "
            f"(byte 0x{err.object[err.start]:02x}); re-save the labels file as UTF-8"
        ) from None
    except OSError as err:
        raise CorpusError(f"{path}: cannot read labels file ({err.strerror}).") from None
    # A BOM in a *labels* file (not an article) is an editor artefact, not data.
    return text.removeprefix("\ufeff")


def read_labels(
    path: str | os.PathLike[str],
    *,
    task: Task,
    articles: dict[str, str] | None = None,
    allow_unknown_technique: bool = False,
) -> list[Label]:
    """Read labels from one file or a folder of per-article ``.labels`` files.

    ``task`` selects the row layout (``si``: 3 columns, ``tc``/``joint``: 4 columns).
    With ``allow_unknown_technique`` a ``?`` technique (TC template) reads as ``None``.
    With ``articles`` every row is also checked against the article texts.
    Labels are returned in file order (files of a folder in name order).
    """
    _check_task(task)
    labels: list[Label] = []
    for file in _label_files(Path(path)):
        text = _read_label_file(file)
        # LF, CRLF or old-Mac CR line ends: a labels file has no other use for a CR
        for lineno, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
            if not line.strip():
                continue
            where = f"{file}, line {lineno}"
            label = _parse_row(line, where, task, allow_unknown_technique)
            if articles is not None:
                article = articles.get(label.article_id)
                bare = label.article_id.removeprefix("article").removesuffix(".txt")
                if article is None and bare != label.article_id and bare in articles:
                    raise CorpusError(
                        f"{where}: no article with id {label.article_id!r}; the id is the "
                        f"part of the file name after 'article': write {bare!r}."
                    )
                if article is None:
                    raise CorpusError(
                        f"{where}: no article with id {label.article_id!r}; add "
                        f"article{label.article_id}.txt to the article folder or remove "
                        "the row."
                    )
                if label.end > len(article):
                    raise CorpusError(
                        f"{where}: end offset {label.end} is past the end of article "
                        f"{label.article_id} ({len(article)} characters); offsets count "
                        "Unicode code points, including a leading BOM and '\\r'."
                    )
            labels.append(replace(label, where=where))
    return labels


def write_labels(path: str | os.PathLike[str], labels: Iterable[Label], task: Task) -> None:
    """Write ``labels`` as one tab-separated file, atomically (temp file + rename); the folder
    must exist.

    For ``tc``/``joint`` a label without technique is written as ``?`` (a TC template). The
    string ``"-"`` writes to standard output.
    """
    _check_task(task)
    rows = []
    for label in labels:
        if task == "si":
            rows.append(f"{label.article_id}\t{label.start}\t{label.end}\n")
        else:
            technique = label.technique if label.technique is not None else UNKNOWN_TECHNIQUE
            rows.append(f"{label.article_id}\t{technique}\t{label.start}\t{label.end}\n")
    write_atomic(path, "".join(rows))


# --------------------------------------------------------------------------- corpus layout


def load_split(corpus_dir: str | os.PathLike[str], split: str) -> list[str]:
    """Return the article ids listed in ``<corpus_dir>/splits/<split>.txt``."""
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}.")
    path = Path(corpus_dir) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise CorpusError(
            f"{path}: split file not found; is {corpus_dir} a PTC corpus folder "
            "(with splits/train.txt and splits/val.txt)?"
        )
    text = _read_label_file(path)
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_corpus_dir() -> Path | None:
    """Locate the PTC corpus: ``$UNSPIN_PTC_DIR``, else ``../shared/data/ptc`` next to the
    current directory or next to the repository root; ``None`` if none exists."""
    env = os.environ.get(ENV_CORPUS_DIR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise CorpusError(
                f"{ENV_CORPUS_DIR}={env} is not a folder; point it at the PTC corpus "
                "folder or unset it."
            )
        return path.resolve()
    repo_root = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), repo_root):
        candidate = base / ".." / "shared" / "data" / "ptc"
        if candidate.is_dir():
            return candidate.resolve()
    return None


def find_corpus(path: str | os.PathLike[str] | None = None) -> Path:
    """``path`` when given, else ``default_corpus_dir()``; a ``CorpusError`` that says what to
    pass when there is none or it is not a folder."""
    if path is None:
        found = default_corpus_dir()
        if found is None:
            raise CorpusError(
                "no PTC corpus found: pass --corpus PATH/TO/ptc (the folder with "
                f"train-articles/ and splits/) or set {ENV_CORPUS_DIR}"
            )
        return found
    if not Path(path).is_dir():
        raise CorpusError(
            f"{path}: no such folder; pass the PTC corpus folder (e.g. ../shared/data/ptc)"
        )
    return Path(path)


def gold_labels(corpus_dir: str | os.PathLike[str], ids: Iterable[str], task: Task) -> list[Label]:
    """Gold training labels of the articles ``ids`` (``train-task-si.labels`` for ``si``,
    ``train-task-flc-tc.labels`` for ``tc`` and ``joint``)."""
    _check_task(task)
    name = "train-task-si.labels" if task == "si" else "train-task-flc-tc.labels"
    path = Path(corpus_dir) / name
    if not path.is_file():
        raise CorpusError(f"{path}: gold labels file not found; check the corpus folder.")
    wanted = set(ids)
    return [label for label in read_labels(path, task=task) if label.article_id in wanted]


def load_texts_and_gold(
    corpus_dir: str | os.PathLike[str], ids: Iterable[str]
) -> tuple[dict[str, str], dict[str, list[tuple[int, int, str]]]]:
    """Texts of the articles ``ids`` and their gold (start, end, technique) rows: what training,
    tuning and the quality benchmarks read."""
    corpus = Path(corpus_dir)
    ids = list(ids)
    texts = {i: read_article(corpus / "train-articles" / f"article{i}.txt") for i in ids}
    gold: dict[str, list[tuple[int, int, str]]] = {i: [] for i in ids}
    for lab in gold_labels(corpus, ids, "tc"):
        gold[lab.article_id].append((lab.start, lab.end, str(lab.technique)))
    return texts, gold
