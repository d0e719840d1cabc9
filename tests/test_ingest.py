"""Inputs: text, HTML, stdin, URLs; every bad input is one clear InputError."""

from __future__ import annotations

import http.server
import io
import re
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from unspin.errors import InputError
from unspin.ingest import (
    MAX_BYTES,
    declared_charset,
    decode_text,
    from_html,
    load,
    read_path,
    read_stdin,
    read_url,
)

ROOT = Path(__file__).resolve().parents[1]


def test_plain_text_kept_exactly(tmp_path: Path) -> None:
    text = "A Title\n\nFirst line.\r\nSecond — line with ünïcode.\n"
    path = tmp_path / "a.txt"
    path.write_bytes(text.encode("utf-8"))
    doc = read_path(path)
    assert doc.text == text
    assert doc.title == "A Title"
    assert doc.kind == "text"
    assert doc.source == str(path)


def test_title_guess_ignores_invisible_characters() -> None:
    from unspin.ingest import _first_line_title

    assert _first_line_title("Title\n\u200b\nBody") == "Title"
    assert _first_line_title("\u200bTitle \n\nBody") == "Title"
    assert _first_line_title("One line\nBody") is None
    # an opening paragraph of two sentences is not a headline; headlines with dots are
    assert _first_line_title("Leaders would worry. But he did not.\n\nBody") is None
    assert _first_line_title("Is this the end? Maybe not. We asked.\n\nBody") is None
    for title in (
        "Is this the end? Maybe",
        "F.B.I. Raids Trump Office",
        "Washington D.C. Mayor Resigns",
        "Why Biden Is Wrong... Again",
        "Rushed And Unprepared\u2026 Could Have Been Worse\u2026",
    ):
        assert _first_line_title(title + "\n\nBody") == title
    assert (
        _first_line_title("Mr. Smith goes to Washington\n\nBody") == "Mr. Smith goes to Washington"
    )


@pytest.mark.parametrize("brk", ["\r\n", "\r", "\x0c", "\u2029"])
def test_title_guess_with_any_line_break(brk: str, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    text = f"A Title{brk}{brk}First line.{brk}"
    path.write_bytes(text.encode("utf-8"))
    doc = read_path(path)
    assert doc.text == text and doc.title == "A Title"


def test_bom_kept_so_offsets_match_the_file_and_no_title_guess(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_bytes("\ufeffJust one paragraph that runs on.\n".encode())
    doc = read_path(path)
    assert doc.text == "\ufeffJust one paragraph that runs on.\n"
    assert doc.title is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"  \n\t\n",
        b"\xef\xbb\xbf",
        b"\xef\xbb\xbf\n\n",
        "\u00a0\u00a0\n".encode(),  # no-break spaces
        "\u2028\u200b\n".encode(),  # a line separator and a zero-width space
    ],
)
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="empty.txt: the input is empty"):
        read_path(path)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark(tmp_path: Path, codec: str) -> None:
    text = "Notepad's Unicode: café.\n\nThe body."
    data = text.encode(codec)  # utf-16 / utf-32 write a BOM; add one for the BE variant
    path = tmp_path / "u.txt"
    path.write_bytes(data if codec != "utf-16-be" else b"\xfe\xff" + data)
    doc = read_path(path)
    assert doc.text == text and doc.title == "Notepad's Unicode: café."


def test_utf16_html_is_recognised(tmp_path: Path) -> None:
    page = "<html><head><title>T</title></head><body><p>" + "Words of an article. " * 5
    path = tmp_path / "page"  # no .html: sniffed once decoded
    path.write_bytes((page + "</p></body></html>").encode("utf-16"))
    assert read_path(path).kind == "html"


def test_declared_charset_of_a_page() -> None:
    assert declared_charset(b'<html><meta charset="windows-1252">', "") == "cp1252"
    assert declared_charset(b"", "text/html; charset=ISO-8859-1") == "cp1252"  # as browsers do
    meta = b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
    assert declared_charset(meta, "") == "koi8-r"
    assert declared_charset(b'<meta charset="no-such-charset">', "") is None
    assert declared_charset(b"<html>", "text/html") is None


def test_html_file_in_a_declared_charset(tmp_path: Path) -> None:
    page = (
        '<html><head><meta charset="windows-1252"><title>Caf\xe9 news</title></head><body>'
        "<article><p>" + "The caf\xe9 opened on Monday, officials said. " * 4 + "</p></article>"
        "</body></html>"
    )
    path = tmp_path / "cp1252.html"
    path.write_bytes(page.encode("cp1252"))
    doc = read_path(path)
    assert "The café opened" in doc.text and doc.title == "Café news"
    # valid UTF-8 wins over a wrong declaration
    path.write_bytes(page.replace("windows-1252", "iso-8859-1").encode("utf-8"))
    assert "The café opened" in read_path(path).text


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "pic.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(InputError, match="binary"):
        read_path(path)


def test_invalid_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Café au lait".encode("latin-1"))
    with pytest.raises(InputError, match=r"not valid UTF-8 at byte offset 3 \(byte 0xe9\)"):
        read_path(path)


def test_huge_file_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as fh:  # a sparse 10 MB file: nothing is really written
        fh.truncate(10 * 1024 * 1024)
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="2 MiB limit"):
        read_path(path)
    assert time.perf_counter() - t0 < 0.5


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_path(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="is a folder"):
        read_path(tmp_path)


class _Endless(io.RawIOBase):
    """A stream that never ends; counts what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = 65536 if n is None or n < 0 else n
        self.read_bytes += n
        return b"a" * n


def test_stdin_text_and_size_cap() -> None:
    doc = read_stdin(io.BytesIO(b"Hello from a pipe.\n"))
    assert doc.text == "Hello from a pipe.\n"
    assert doc.source == "<stdin>"
    endless = _Endless()
    with pytest.raises(InputError, match="MiB limit"):
        read_stdin(endless)  # type: ignore[arg-type]
    assert endless.read_bytes <= MAX_BYTES + 1


def test_stdin_html_is_sniffed() -> None:
    html = (ROOT / "examples" / "hostile.html").read_bytes()
    doc = read_stdin(io.BytesIO(html))
    assert doc.kind == "html"
    assert "takfiri terrorists" in doc.text


def test_decode_text_direct() -> None:
    assert decode_text(b"ok", "x") == "ok"
    with pytest.raises(InputError, match="x: not valid UTF-8 at byte offset 1"):
        decode_text(b"a\xff", "x")


def test_html_file_main_text_and_title() -> None:
    doc = read_path(ROOT / "examples" / "hostile.html")
    assert doc.kind == "html"
    assert doc.title == 'Victory <script>alert("title")</script> for our heroes'
    assert doc.text.startswith(doc.title)
    # Escaped markup in the article is text; real scripts, menus and footers are gone.
    assert "<script>window.__pwned=1</script>" in doc.text
    assert 'onerror="window.__pwned=2"' in doc.text
    assert "javascript:window.__pwned=3" in doc.text
    assert "head script ran" not in doc.text
    assert "body script ran" not in doc.text
    assert "Copyright" not in doc.text
    assert "Privacy" not in doc.text
    # one paragraph per block, a blank line between (spans and sentences never cross one)
    paragraphs = doc.text.strip().split("\n\n")
    assert len(paragraphs) == 5 and not any("\n" in para for para in paragraphs)
    assert paragraphs[1].startswith("The brave defenders") and paragraphs[1].endswith("mines.")


def test_title_prepended_when_body_lacks_it(tmp_path: Path) -> None:
    body = "<p>" + "The council met on Monday and approved the budget for roads. " * 5 + "</p>"
    path = tmp_path / "page.html"
    path.write_text(
        f"<html><head><title>Budget news</title></head><body><article>{body}</article>"
        "</body></html>",
        encoding="utf-8",
    )
    doc = read_path(path)
    assert doc.title == "Budget news"
    assert doc.text.startswith("Budget news\n\nThe council met on Monday")


def test_html_without_article_text(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    path.write_text(
        "<!doctype html><html><head><title>x</title><script>var a = 1;</script></head>"
        "<body><nav><a href='/'>Home</a></nav></body></html>",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="no article text found"):
        read_path(path)


def test_html_extras_pull_lxml_html_clean() -> None:
    # lxml >= 5.2 ships lxml.html.clean (imported by jusText, under trafilatura) separately.
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    extras = meta["optional-dependencies"]
    for extra in ("html", "test"):
        names = [re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in extras[extra]]
        assert "trafilatura" in names, extra
        assert "lxml_html_clean" in names, extra


@pytest.fixture
def fresh_imports() -> Iterator[None]:
    """Put sys.modules back after a test that makes trafilatura import afresh."""
    saved = dict(sys.modules)
    yield
    for name in [n for n in sys.modules if n not in saved]:
        del sys.modules[name]
    sys.modules.update(saved)


def _forget(*packages: str) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]
    sys.modules.pop("lxml.html.clean", None)


def _html_error() -> str:
    with pytest.raises(InputError) as info:
        from_html("<html><body><p>Some text.</p></body></html>", "page.html")
    return str(info.value)


def test_html_without_trafilatura_names_the_extra(fresh_imports: None) -> None:
    _forget("trafilatura")
    sys.modules["trafilatura"] = None  # type: ignore[assignment]  # as if not installed
    msg = _html_error()
    assert msg == (
        "page.html: reading HTML needs the [html] extra: pip install 'unspin[html]' "
        "(from a checkout: pip install '.[html]')"
    )


def test_html_broken_trafilatura_names_the_missing_module(fresh_imports: None) -> None:
    # lxml >= 5.2 moved lxml.html.clean (which jusText, under trafilatura, imports) out to
    # lxml_html_clean; its stub raises an ImportError that names no module.
    _forget("trafilatura", "justext", "lxml_html_clean")
    sys.modules["lxml_html_clean"] = None  # type: ignore[assignment]
    msg = _html_error()
    assert "[html] extra" not in msg
    assert msg == (
        "page.html: trafilatura is installed but cannot import lxml_html_clean: "
        "pip install 'lxml_html_clean'"
    )
    # A dependency missing by name is named.
    _forget("trafilatura", "justext", "lxml_html_clean")
    sys.modules["justext"] = None  # type: ignore[assignment]
    msg = _html_error()
    assert msg.startswith("page.html: trafilatura is installed but cannot import justext")
    assert msg.endswith(": pip install 'justext'")


def test_unreachable_url_is_clear() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(InputError, match=r"cannot fetch .*online"):
        read_url("http://127.0.0.1:9/article", timeout=2)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://a b.com/", "control characters"),
        ("http://example.invalid:x/", "nonnumeric port"),
    ],
)
def test_malformed_urls_are_named(url: str, why: str) -> None:
    # refused before any connection is tried (these used to end in a traceback)
    with pytest.raises(InputError, match=r"not a valid web address") as err:
        read_url(url, timeout=2)
    assert why in str(err.value)


def test_other_schemes_refused() -> None:
    with pytest.raises(InputError, match="only http"):
        load("ftp://example.invalid/a.txt")


PAGE = (
    "<html><head><title>Local page</title></head><body><article><p>"
    + "The heroic army crushed the takfiri terrorists, officials said on Monday. " * 4
    + "</p></article></body></html>"
).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(MAX_BYTES + 10))
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_error(404, "Not Found")
            return
        if self.path == "/moved":  # a redirect to an address urllib cannot parse
            self.send_response(302)
            self.send_header("Location", "http://[::1")
            self.end_headers()
            return
        if self.path not in ("/article", "/big", "/latin1.txt", "/undeclared.txt", "/caf%C3%A9"):
            self.send_error(404, "Not Found")
            return
        if self.path in ("/latin1.txt", "/undeclared.txt"):
            body = "Café owners said the rent had doubled.\n".encode("latin-1")
            charset = "; charset=iso-8859-1" if self.path == "/latin1.txt" else ""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain" + charset)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_fetch(server: str) -> None:
    doc = load(f"{server}/article")
    assert doc.kind == "html"
    assert doc.title == "Local page"
    assert "takfiri terrorists" in doc.text
    assert doc.source == f"{server}/article"


def test_url_as_copied_from_a_browser_and_a_bad_redirect(server: str) -> None:
    assert "takfiri terrorists" in load(f"{server}/café").text  # sent percent-encoded
    with pytest.raises(InputError, match="or the server redirected to one .Invalid IPv6"):
        load(f"{server}/moved")


def test_url_in_the_charset_its_server_declares(server: str) -> None:
    doc = load(f"{server}/latin1.txt")
    assert doc.kind == "text" and doc.text.startswith("Caf\u00e9 owners")
    with pytest.raises(InputError, match="not valid UTF-8 .*; the page declares no charset"):
        load(f"{server}/undeclared.txt")


def test_url_too_big_and_http_error(server: str) -> None:
    with pytest.raises(InputError, match="MiB limit"):
        load(f"{server}/big")
    with pytest.raises(InputError, match="HTTP 404"):
        load(f"{server}/missing")


def test_load_takes_paths_of_any_kind_and_refuses_the_rest(tmp_path: Path) -> None:
    import os

    article = tmp_path / "a.txt"
    article.write_text("They vote on Monday.\n", encoding="utf-8")

    class Where:  # an os.PathLike that is not a pathlib path
        def __fspath__(self) -> str:
            return str(article)

    for source in (article, str(article), os.fsencode(article), Where()):
        assert load(source).text.startswith("They vote")  # type: ignore[arg-type]
    for bad in (None, 5):
        with pytest.raises(InputError, match="load takes a file path"):
            load(bad)  # type: ignore[arg-type]


def test_a_missing_file_that_looks_like_a_web_address_gets_a_hint() -> None:
    from unspin.ingest import load

    with pytest.raises(InputError, match=r"no such file; .* https://www.example.org/news$"):
        load("www.example.org/news")
    for name in ("notes.txt", "folder/article1.txt"):
        with pytest.raises(InputError, match=r"no such file$"):
            load(name)
