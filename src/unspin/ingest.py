"""Turn what the user points at (a file, an HTML page, a URL, stdin) into one article text.

Everything here raises :class:`~unspin.errors.InputError` with a one-line message on bad input,
before any output is written. The text returned is what every offset in every report refers to.

* Plain text is decoded as UTF-8 (a leading UTF-8 byte-order mark stays, as in the PTC
  files, whose offsets count it) and otherwise kept as is, so offsets match the file; a
  UTF-16/32 byte-order mark decodes as that encoding; text that is not UTF-8 decodes in the
  charset a page's ``<meta>`` or the server's ``Content-Type`` declares.
* HTML (by file extension, ``Content-Type`` or a ``<!doctype html``/``<html`` start) goes
  through trafilatura (the ``[html]`` extra), which keeps the main article text and drops
  menus, scripts and boilerplate. The page title becomes the first line of the text (unless
  the body already starts with it), then a blank line, then the body - the layout of PTC
  articles - so headlines are analysed too.
* Inputs larger than :data:`MAX_BYTES` (2 MiB) are refused without being read into memory.
"""

from __future__ import annotations

import codecs
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from unspin.errors import InputError
from unspin.text import LINE_BREAK, blank_trimmed, is_blank

__all__ = [
    "MAX_BYTES",
    "URL_TIMEOUT",
    "Document",
    "declared_charset",
    "decode_text",
    "from_html",
    "load",
    "read_bytes",
    "read_path",
    "read_stdin",
    "read_url",
]

#: Largest input accepted, in bytes (files, stdin and downloads alike).
MAX_BYTES = 2 * 1024 * 1024
#: Seconds to wait for a URL to connect and for each read.
URL_TIMEOUT = 15.0

_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".shtml"})
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_URL = re.compile(r"^https?://", re.I)
_MIN_WORDS = 5  # fewer words of main text than this: the page has no article


@dataclass(frozen=True, slots=True)
class Document:
    """An article ready for analysis.

    ``text`` is the exact string analysed (offsets refer to it); ``title`` is ``None`` when
    unknown; ``source`` is the path, URL or ``"-"`` for stdin; ``kind`` says how it was read.
    """

    text: str
    title: str | None
    source: str
    kind: Literal["text", "html"]


def _size_error(source: str, limit: int) -> InputError:
    return InputError(
        f"{source}: larger than the {limit // (1024 * 1024)} MiB limit; "
        "split the article or pass only the article text"
    )


def read_bytes(stream: BinaryIO, source: str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """Read at most ``max_bytes`` from ``stream``; refuse (without reading more) if it is larger."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(65536, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _size_error(source, max_bytes)
    return b"".join(chunks)


_BOMS = (  # UTF-32 before UTF-16: FF FE 00 00 starts both
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)


def _codec(name: str | bytes | None) -> str | None:
    """A charset label as a Python codec name (None when unknown). Like browsers, ASCII and
    Latin-1 labels read as windows-1252, their superset."""
    if not name:
        return None
    label = (name.decode("ascii", "replace") if isinstance(name, bytes) else name).strip().lower()
    try:
        codec = codecs.lookup(label).name
    except LookupError:
        return None
    return "cp1252" if codec in ("ascii", "latin-1", "iso8859-1") else codec


def declared_charset(data: bytes, content_type: str = "") -> str | None:
    """The charset a server's ``Content-Type`` or an HTML page's ``<meta>`` declares."""
    header = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
    if header:
        return _codec(header.group(1))
    meta = _CHARSET.search(data[:4096])
    return _codec(meta.group(1)) if meta else None


def decode_text(data: bytes, source: str, *, charset: str | None = None) -> str:
    """Decode an article's bytes, refusing empty, binary and undecodable input with a precise
    message. UTF-8 first (a leading BOM stays in the text: offsets count it, as in the PTC
    files and `predict`); a UTF-16/32 byte-order mark decodes as that encoding; else the
    ``charset`` the page or server declares."""
    text: str | None = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as err:
                raise InputError(
                    f"{source}: starts with a {codec.upper()} byte-order mark but is not valid "
                    f"{codec.upper()} at byte offset {err.start + len(bom)}; re-save it as UTF-8"
                ) from None
            break
    if text is None:
        if b"\x00" in data:
            raise InputError(
                f"{source}: looks like a binary file (it contains NUL bytes); "
                "pass a UTF-8 text or HTML file"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            declared = _codec(charset)
            if declared and declared != "utf-8":
                try:
                    text = data.decode(declared)
                except UnicodeDecodeError as err2:
                    raise InputError(
                        f"{source}: declares the charset {charset} but is not valid {charset} "
                        f"at byte offset {err2.start}"
                    ) from None
            else:
                fix = (
                    "the page declares no charset"
                    if _URL.match(source)
                    else "re-save the file as UTF-8"
                )
                raise InputError(
                    f"{source}: not valid UTF-8 at byte offset {err.start} "
                    f"(byte 0x{data[err.start]:02x}); {fix}"
                ) from None
    if all(is_blank(ch) for ch in text):  # a BOM, no-break spaces or line separators alone
        raise InputError(f"{source}: the input is empty; nothing to analyse")
    return text


def _looks_like_html(data: bytes) -> bool:
    return bool(_HTML_START.match(data[:4096].removeprefix(b"\xef\xbb\xbf")))


# a file name that looks like a web address: "www.example.org", or a host name with a dot and a
# path after it ("example.org/news")
_LOOKS_LIKE_A_HOST = re.compile(
    r"^(www\.[a-z0-9.-]+|[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}/\S*)$", re.IGNORECASE
)


# inside a line: a lower-case word of two letters or more, its end mark, a space and a capital
_SENTENCE_BREAK = re.compile(r"[a-z]{2,}[.!?][\"\u201d\u2019)]*\s+[\"\u201c\u2018(]*[A-Z]")
_ENDS = re.compile(r"[.!?][\"\u201d\u2019)]*$")


def _first_line_title(text: str) -> str | None:
    """A title guess for plain text: a short first line followed by a blank line, unless it
    reads as an opening paragraph: two sentences or more (a word, a full stop, a space, a
    capital) ending in a full stop ("Leaders would worry. But he did not."; "F.B.I. Raids Trump
    Office" and "Wrong... Again" stay titles)."""
    text = text.replace("\u2029", "\n\n")  # a paragraph separator
    lines = [line[slice(*blank_trimmed(line))] for line in LINE_BREAK.split(text, maxsplit=2)]
    if len(lines) == 3 and lines[1] == "" and lines[2]:
        first = lines[0]
        if 0 < len(first) <= 200 and not (_SENTENCE_BREAK.search(first) and _ENDS.search(first)):
            return first
    return None


def _html_import_error(source: str, err: ImportError) -> str:
    """What to tell the user when ``import trafilatura`` fails: the [html] extra when
    trafilatura itself is missing, else the module it could not import."""
    if err.name == "trafilatura":
        return (
            f"{source}: reading HTML needs the [html] extra: pip install 'unspin[html]' "
            "(from a checkout: pip install '.[html]')"
        )
    missing = err.name
    if missing is None and "lxml_html_clean" in str(err):
        missing = "lxml_html_clean"  # lxml >= 5.2's lxml.html.clean stub names no module
    if missing:
        top = missing.split(".")[0]
        package = "lxml_html_clean" if missing.startswith("lxml.html.clean") else top
        return (
            f"{source}: trafilatura is installed but cannot import {missing}: "
            f"pip install '{package}'"
        )
    detail = (str(err).splitlines() or [type(err).__name__])[0]
    return (
        f"{source}: trafilatura is installed but cannot be imported ({detail}); "
        "reinstall it: pip install --force-reinstall 'unspin[html]'"
    )


def from_html(html: str, source: str, *, url: str | None = None) -> Document:
    """Extract title and main text from an HTML page with trafilatura."""
    try:
        import trafilatura
    except ImportError as err:
        raise InputError(_html_import_error(source, err)) from None
    raw = trafilatura.extract(
        html,
        url=url,
        output_format="json",
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_recall=True,
    )
    data = json.loads(raw) if raw else {}
    body = (data.get("text") or data.get("raw_text") or "").strip()
    # trafilatura puts each block (paragraph, heading, list item) on one line; a blank line
    # between them is a paragraph break, as in plain-text articles (spans never cross one)
    body = "\n\n".join(line.strip() for line in body.splitlines() if line.strip())
    title = (data.get("title") or "").strip() or None
    if len(re.findall(r"\w+", body)) < _MIN_WORDS:  # trafilatura's fallback keeps menu crumbs
        raise InputError(
            f"{source}: no article text found in this HTML page; for a fragment of HTML, wrap "
            "it in <html><body>...</body></html>, or save the text as a .txt file"
        )
    if title and not body.startswith(title):
        text = f"{title}\n\n{body}\n"
    else:
        text = body + "\n"
    return Document(text=text, title=title, source=source, kind="html")


def _document(
    data: bytes,
    source: str,
    *,
    html: bool | None,
    url: str | None = None,
    content_type: str = "",
) -> Document:
    if html is None:
        html = _looks_like_html(data)  # ASCII-compatible bytes; UTF-16 is checked once decoded
        detect = not html
    else:
        detect = False
    charset = declared_charset(data if html else b"", content_type)
    text = decode_text(data, source, charset=charset)
    if detect:
        html = _looks_like_html(text[:4096].encode("utf-8"))
    if html:
        return from_html(text.removeprefix("\ufeff"), source, url=url)
    return Document(text=text, title=_first_line_title(text), source=source, kind="text")


def read_path(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> Document:
    """Read a plain-text or HTML file."""
    p = Path(path)
    source = str(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise InputError(f"{source}: is a folder; pass an article file")
        if size > max_bytes:
            raise _size_error(source, max_bytes)
        with p.open("rb") as fh:
            data = read_bytes(fh, source, max_bytes=max_bytes)
    except FileNotFoundError:
        hint = ""
        if _LOOKS_LIKE_A_HOST.match(source):  # www.example.org/news: a URL without its scheme?
            hint = f"; for a web page, give the whole URL: https://{source}"
        raise InputError(f"{source}: no such file{hint}") from None
    except PermissionError:
        raise InputError(f"{source}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a folder; pass an article file") from None
    except OSError as err:
        raise InputError(f"{source}: cannot read ({err.strerror or err})") from None
    html = True if p.suffix.lower() in _HTML_SUFFIXES else None
    return _document(data, source, html=html)


def read_stdin(stream: BinaryIO | None = None, *, max_bytes: int = MAX_BYTES) -> Document:
    """Read an article (text or HTML) from standard input."""
    if stream is None:
        stream = sys.stdin.buffer
    data = read_bytes(stream, "<stdin>", max_bytes=max_bytes)
    return _document(data, "<stdin>", html=None)


def _ascii_url(url: str) -> str:
    """A web address as copied from a browser (``/café``, ``bücher.de``) in the ASCII form
    HTTP needs: the host in IDNA, the rest percent-encoded (what is encoded already stays)."""
    if url.isascii():
        return url
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    host = parts.hostname or ""
    if host and not host.isascii():
        netloc = netloc.replace(host, host.encode("idna").decode("ascii"))
    safe = "/:@!$&'()*+,;=~%"
    return urllib.parse.urlunsplit(
        (
            parts.scheme,
            urllib.parse.quote(netloc, safe=safe + "[]"),
            urllib.parse.quote(parts.path, safe=safe),
            urllib.parse.quote(parts.query, safe=safe + "?"),
            urllib.parse.quote(parts.fragment, safe=safe + "?"),
        )
    )


def read_url(url: str, *, timeout: float = URL_TIMEOUT, max_bytes: int = MAX_BYTES) -> Document:
    """Download a page (with a timeout and a size cap) and extract its article."""
    bad_address = f"{url}: not a valid web address"
    try:
        request = urllib.request.Request(
            _ascii_url(url),
            headers={"User-Agent": "unspin (+article analysis)", "Accept": "text/html,*/*"},
        )
    except ValueError as err:  # "http://[::1" and the like
        raise InputError(f"{bad_address} ({err})") from None
    # past this point the address parsed: a bad one is the user's or a redirect's
    bad_address += ", or the server redirected to one"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            length = response.headers.get("Content-Length")
            if length and length.isascii() and length.isdigit() and int(length) > max_bytes:
                raise _size_error(url, max_bytes)
            data = read_bytes(response, url, max_bytes=max_bytes)
            ctype = (response.headers.get("Content-Type") or "").lower()
            final_url = response.geturl() or url
    except http.client.InvalidURL as err:  # a space in the host, a port that is no number
        raise InputError(f"{bad_address} ({err})") from None
    except urllib.error.HTTPError as err:
        raise InputError(f"{url}: the server answered HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = getattr(err, "reason", err)
        raise InputError(
            f"{url}: cannot fetch ({reason}); check the address and that you are online, "
            "or save the page and pass the file"
        ) from None
    except TimeoutError:
        raise InputError(f"{url}: no answer within {timeout:g} s; try again later") from None
    except (OSError, http.client.HTTPException) as err:  # a dropped connection, a bad answer
        raise InputError(f"{url}: cannot fetch ({str(err) or type(err).__name__})") from None
    except ValueError as err:  # an address urllib refused further down (a redirect's, too)
        raise InputError(f"{bad_address} ({err})") from None
    if "html" in ctype:
        html: bool | None = True
    elif ctype.startswith("text/plain"):
        html = False
    else:
        html = None
    return _document(data, url, html=html, url=final_url, content_type=ctype)


def load(
    source: str | os.PathLike[str] | bytes,
    *,
    max_bytes: int = MAX_BYTES,
    timeout: float = URL_TIMEOUT,
) -> Document:
    """Read ``source``: ``"-"`` for stdin, an ``http(s)://`` URL, or a file path (a str, a
    ``Path`` or any path-like)."""
    if isinstance(source, bytes):
        source = os.fsdecode(source)
    if isinstance(source, os.PathLike):
        return read_path(os.fspath(source), max_bytes=max_bytes)
    if not isinstance(source, str):
        raise InputError(
            f"load takes a file path, an http(s):// URL or '-', got {type(source).__name__}"
        )
    if source == "-":
        return read_stdin(max_bytes=max_bytes)
    if _URL.match(source):
        return read_url(source, timeout=timeout, max_bytes=max_bytes)
    if "://" in source:
        raise InputError(f"{source}: only http:// and https:// URLs can be fetched")
    return read_path(source, max_bytes=max_bytes)
