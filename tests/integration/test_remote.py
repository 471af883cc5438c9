"""Remote list sources against a local HTTP server: conditional GET, limits, failures, the cache."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from filterdns.lists.remote import FetchResult, RemoteCache
from tests.fakes.http import LIST_A, ListServer, Page, list_server, make_handler

LIST_B = b"# list B\n0.0.0.0 ads.example\n0.0.0.0 casino.example\n0.0.0.0 more.example\n"
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>\n"
JUNK = bytes(range(256)) * 2
LAST_MODIFIED = "Tue, 04 Jun 2024 10:00:00 GMT"


@pytest.fixture
def server() -> Iterator[ListServer]:
    with list_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Talk to the loopback server directly whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def looks_like_a_list(path: Path) -> str | None:
    """The kind of check the caller makes: text, not HTML, at least one entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if "<html" in text.lower():
        return "an HTML page"
    entries = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return None if entries else "no entries"


def leftovers(cache_dir: Path) -> list[str]:
    """Temporary files left in the cache directory."""
    return sorted(p.name for p in cache_dir.iterdir() if p.name.endswith(".part"))


def meta_of(result: FetchResult) -> dict[str, object]:
    assert result.path is not None
    data = json.loads(result.path.with_name(result.path.stem + ".meta.json").read_text())
    assert isinstance(data, dict)
    return data


# ---------------------------------------------------------------------- successful downloads


def test_first_download_stores_body_and_metadata(server: ListServer, tmp_path: Path) -> None:
    server.pages["/a.txt"] = Page(etag='"v1"', last_modified=LAST_MODIFIED)
    cache_dir = tmp_path / "state" / "lists"
    cache = RemoteCache(cache_dir, timeout=5)
    url = server.url("/a.txt")
    before = time.time()

    result = cache.fetch(url, validate=looks_like_a_list)

    assert result.status == "downloaded"
    assert result.changed
    assert result.error is None
    assert result.path == cache.path_for(url)
    assert result.path.read_bytes() == LIST_A
    assert result.size == len(LIST_A)
    assert result.fetched_at is not None and result.fetched_at >= before
    meta = meta_of(result)
    assert meta["etag"] == '"v1"'
    assert meta["last_modified"] == LAST_MODIFIED
    assert meta["size"] == len(LIST_A)
    assert meta["url"] == url
    assert isinstance(meta["sha256"], str) and len(meta["sha256"]) == 64
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in cache_dir.iterdir())
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted(
        [result.path.name, result.path.stem + ".meta.json"]
    )
    first = server.last("/a.txt").headers
    assert first["user-agent"].startswith("filterdns/")
    assert "if-none-match" not in first
    assert "if-modified-since" not in first


@pytest.mark.parametrize(
    ("page", "header", "value"),
    [
        (Page(etag='"v1"', last_modified=LAST_MODIFIED), "if-none-match", '"v1"'),
        (Page(last_modified=LAST_MODIFIED), "if-modified-since", LAST_MODIFIED),
    ],
    ids=["etag", "last-modified-only"],
)
def test_second_fetch_is_conditional_and_not_modified(
    server: ListServer, tmp_path: Path, page: Page, header: str, value: str
) -> None:
    server.pages["/a.txt"] = page
    cache = RemoteCache(tmp_path, timeout=5)
    url = server.url("/a.txt")
    first = cache.fetch(url)

    second = cache.fetch(url)

    assert server.last("/a.txt").headers[header] == value
    assert second.status == "not_modified"
    assert not second.changed
    assert second.error is None
    assert second.path == first.path
    assert second.size == len(LIST_A)
    assert first.fetched_at is not None and second.fetched_at is not None
    assert second.fetched_at >= first.fetched_at
    assert meta_of(second)["fetched_at"] == second.fetched_at
    assert leftovers(tmp_path) == []


def test_changed_body_replaces_the_copy(server: ListServer, tmp_path: Path) -> None:
    server.pages["/a.txt"] = Page(LIST_A, etag='"v1"')
    cache = RemoteCache(tmp_path, timeout=5)
    url = server.url("/a.txt")
    cache.fetch(url)
    server.pages["/a.txt"] = Page(LIST_B, etag='"v2"')

    result = cache.fetch(url, validate=looks_like_a_list)

    assert server.last("/a.txt").headers["if-none-match"] == '"v1"'
    assert (result.status, result.changed) == ("downloaded", True)
    assert result.path is not None and result.path.read_bytes() == LIST_B
    assert result.size == len(LIST_B)
    assert meta_of(result)["etag"] == '"v2"'
    assert leftovers(tmp_path) == []


def test_same_body_again_is_not_a_change(server: ListServer, tmp_path: Path) -> None:
    """A server without validators answers 200 every time: the same bytes change nothing."""
    server.pages["/a.txt"] = Page(LIST_A)
    cache = RemoteCache(tmp_path, timeout=5)
    url = server.url("/a.txt")
    cache.fetch(url)

    result = cache.fetch(url)

    assert (result.status, result.changed, result.error) == ("downloaded", False, None)
    assert result.path is not None and result.path.read_bytes() == LIST_A
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("pages", "path"),
    [
        ({"/a.gz": Page(LIST_B, gzip=True)}, "/a.gz"),
        ({"/old.txt": Page(location="/new.txt"), "/new.txt": Page(LIST_B)}, "/old.txt"),
        (
            {f"/r{i}": Page(location=f"/r{i + 1}") for i in range(5)} | {"/r5": Page(LIST_B)},
            "/r0",
        ),
        ({"/a.txt": Page(LIST_B, length=False)}, "/a.txt"),
    ],
    ids=["gzip-encoding", "redirect", "five-redirects", "no-content-length"],
)
def test_body_variants_are_stored_plainly(
    server: ListServer, tmp_path: Path, pages: dict[str, Page], path: str
) -> None:
    server.pages.update(pages)
    cache = RemoteCache(tmp_path, timeout=5)
    url = server.url(path)

    result = cache.fetch(url, validate=looks_like_a_list)

    assert (result.status, result.error) == ("downloaded", None)
    assert result.path == cache.path_for(url)  # named after the URL asked for
    assert result.path.read_bytes() == LIST_B
    assert result.size == len(LIST_B)


# ---------------------------------------------------------------------- failures keep the copy


@dataclass(frozen=True)
class Failure:
    """A way for a refresh to go wrong, and what the error must say."""

    id: str
    pages: dict[str, Page]  # what the server answers on the refresh ("/a.txt" missing: 404)
    reason: str
    timeout: float = 5.0
    max_bytes: int = 1000
    slower_than: float = 0.0


BIG = b"0.0.0.0 big.example\n" * 100  # 2000 bytes, over the max_bytes of 1000
FAILURES = [
    Failure("http-404", {}, "HTTP 404 Not Found"),
    Failure("http-500", {"/a.txt": Page(HTML_PAGE, status=500)}, "HTTP 500 Internal Server Error"),
    Failure("too-big-declared", {"/a.txt": Page(BIG)}, "larger than 1000 bytes"),
    Failure("too-big-streamed", {"/a.txt": Page(BIG, length=False)}, "larger than 1000 bytes"),
    Failure("gzip-bomb", {"/a.txt": Page(bytes(200_000), gzip=True)}, "larger than 1000 bytes"),
    Failure("binary-junk", {"/a.txt": Page(JUNK)}, "rejected: not UTF-8 text"),
    Failure("html-with-200", {"/a.txt": Page(HTML_PAGE)}, "rejected: an HTML page"),
    Failure("empty-body", {"/a.txt": Page(b"")}, "rejected: no entries"),
    Failure("bad-gzip", {"/a.txt": Page(LIST_B, encoding="gzip")}, "bad gzip body"),
    Failure("unknown-encoding", {"/a.txt": Page(LIST_B, encoding="br")}, "Content-Encoding"),
    Failure("truncated", {"/a.txt": Page(LIST_B, truncate=True)}, "closed after"),
    Failure("hanging", {"/a.txt": Page(LIST_B, hang=True)}, "timed out after 0.5 s", 0.5),
    Failure(
        "trickling",
        {"/a.txt": Page(LIST_B, trickle=True, length=False)},
        "timed out after 0.5 s",
        0.5,
        slower_than=0.5,  # each read gets a byte in time: only the overall deadline stops it
    ),
    Failure("redirect-loop", {"/a.txt": Page(location="/a.txt")}, "more than 5 redirects"),
    Failure("redirect-to-ftp", {"/a.txt": Page(location="ftp://127.0.0.1/a.txt")}, "not http(s)"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=[f.id for f in FAILURES])
def test_failed_refresh_keeps_the_previous_copy(
    server: ListServer, tmp_path: Path, failure: Failure
) -> None:
    server.pages["/a.txt"] = Page(LIST_A, etag='"v1"')
    cache = RemoteCache(tmp_path, timeout=failure.timeout, max_bytes=failure.max_bytes)
    url = server.url("/a.txt")
    first = cache.fetch(url, validate=looks_like_a_list)
    assert first.status == "downloaded"
    server.pages.clear()
    server.pages.update(failure.pages)

    started = time.monotonic()
    result = cache.fetch(url, validate=looks_like_a_list)
    elapsed = time.monotonic() - started

    assert result.status == "cached"
    assert not result.changed
    assert result.error is not None
    assert result.error.startswith(f"{url}: ")
    assert failure.reason in result.error
    assert result.path is not None and result.path == first.path
    assert result.path.read_bytes() == LIST_A
    assert result.size == len(LIST_A)
    assert result.fetched_at == first.fetched_at
    assert meta_of(result)["etag"] == '"v1"'
    assert leftovers(tmp_path) == []
    assert failure.slower_than <= elapsed < failure.timeout + 1.5


def test_server_gone_then_restart_without_network(server: ListServer, tmp_path: Path) -> None:
    server.pages["/a.txt"] = Page(LIST_A, etag='"v1"')
    url = server.url("/a.txt")
    first = RemoteCache(tmp_path, timeout=5).fetch(url)
    server.stop()

    refused = RemoteCache(tmp_path, timeout=5).fetch(url)
    restarted = RemoteCache(tmp_path, timeout=5).cached(url)

    assert refused.status == "cached"
    assert refused.error == f"{url}: connection refused"
    assert refused.path == first.path
    assert restarted == FetchResult(url, first.path, False, "cached", None, first.fetched_at,
                                    len(LIST_A))  # fmt: skip
    assert restarted.path is not None and restarted.path.read_bytes() == LIST_A


def test_failure_is_logged_with_the_reason(
    server: ListServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.pages["/a.txt"] = Page(LIST_A)
    cache = RemoteCache(tmp_path, timeout=5)
    url = server.url("/a.txt")
    cache.fetch(url)
    server.pages.clear()

    with caplog.at_level(logging.WARNING, logger="filterdns.lists.remote"):
        cache.fetch(url)

    assert f"{url}: HTTP 404 Not Found; keeping the copy from" in caplog.text


# ---------------------------------------------------------------------- no copy at all


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda s: s.url("/missing.txt"), "HTTP 404 Not Found"),
        (lambda s: s.url("/big.txt"), "larger than 1000 bytes"),
        (lambda s: s.url("/junk.bin"), "rejected: not UTF-8 text"),
        (lambda s: f"http://127.0.0.1:{_closed_port()}/a.txt", "connection refused"),
        (lambda s: s.url("/a.txt").replace("http:", "https:"), "TLS error"),
        (lambda s: "http://lists.nonexistent.invalid/a.txt", "cannot resolve"),
        (lambda s: "ftp://127.0.0.1/a.txt", "unsupported scheme 'ftp'"),
        (lambda s: "file:///etc/hosts", "unsupported scheme 'file'"),
        (lambda s: "http:///a.txt", "no host"),
    ],
    ids=["404", "too-big", "junk", "refused", "tls", "dns", "ftp", "file", "no-host"],
)
def test_no_copy_at_all_fails(
    server: ListServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_url: Callable[[ListServer], str],
    reason: str,
) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, *args: object, **kwargs: object) -> object:
        if host.endswith(".invalid"):  # no resolver needed to know this one fails
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    server.pages["/big.txt"] = Page(BIG)
    server.pages["/junk.bin"] = Page(JUNK)
    cache = RemoteCache(tmp_path, timeout=5, max_bytes=1000)
    url = make_url(server)

    result = cache.fetch(url, validate=looks_like_a_list)

    assert (result.status, result.path, result.changed) == ("failed", None, False)
    assert (result.fetched_at, result.size) == (None, 0)
    assert result.error is not None
    assert result.error.startswith(f"{url}: ")
    assert reason in result.error
    assert not tmp_path.exists() or leftovers(tmp_path) == []


def test_untrusted_certificate_fails(tmp_path: Path) -> None:
    """HTTPS with a certificate from an unknown authority: refused, and the error says why."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    holder: list[ListServer] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(lambda: holder[0]))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    lists = ListServer(httpd, thread, {"/a.txt": Page(LIST_A)})
    holder.append(lists)
    thread.start()
    try:
        url = lists.url("/a.txt").replace("http:", "https:")
        result = RemoteCache(tmp_path, timeout=5).fetch(url)
    finally:
        lists.stop()

    assert (result.status, result.path) == ("failed", None)
    assert result.error is not None
    assert result.error.startswith(f"{url}: TLS certificate verification failed: ")
    assert lists.seen == []


def test_cached_without_a_copy_fails(tmp_path: Path) -> None:
    result = RemoteCache(tmp_path / "never-created").cached("https://lists.example/a.txt")

    assert result.status == "failed"
    assert result.path is None
    assert result.error == "https://lists.example/a.txt: no cached copy"
    assert not (tmp_path / "never-created").exists()  # reading creates nothing


def test_cache_dir_that_cannot_be_created_fails(server: ListServer, tmp_path: Path) -> None:
    """A path under a regular file: mkdir fails even for root (chmod would not stop root)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file\n")
    cache_dir = blocker / "lists"
    url = server.url("/a.txt")
    server.pages["/a.txt"] = Page(LIST_A)

    result = RemoteCache(cache_dir, timeout=5).fetch(url)

    assert (result.status, result.path) == ("failed", None)
    assert result.error is not None
    assert result.error.startswith(f"{url}: cannot create cache directory {cache_dir}: ")
    assert "Not a directory" in result.error
    assert server.seen == []  # gave up before the network


# ---------------------------------------------------------------------- file names


def test_path_for_is_stable_and_distinct(tmp_path: Path) -> None:
    cache = RemoteCache(tmp_path)
    a = cache.path_for("https://Lists.Example.org/ads.txt")
    b = cache.path_for("https://lists.example.org/trackers.txt")

    assert a == RemoteCache(tmp_path).path_for("https://Lists.Example.org/ads.txt")
    assert a != b
    assert a.parent == tmp_path
    assert a.name.startswith("lists.example.org-")
    assert a.suffix == ".txt"
    assert len(a.stem) == len("lists.example.org-") + 16
    assert cache.path_for("not a url").name.startswith("nohost-")
