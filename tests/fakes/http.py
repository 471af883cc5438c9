"""A loopback HTTP server for list downloads; each path answers as the test sets it."""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LIST_A = b"# list A\n0.0.0.0 ads.example\n0.0.0.0 tracker.example\n"


@dataclass
class Page:
    """What the server answers for one path."""

    body: bytes = LIST_A
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False  # compress the body and say Content-Encoding: gzip
    encoding: str | None = None  # a Content-Encoding header sent as is (body untouched)
    length: bool = True  # send Content-Length (else the body ends when the connection closes)
    truncate: bool = False  # declare the full length, send half, close
    hang: bool = False  # send the headers and a few bytes, then block until the test ends
    trickle: bool = False  # send a byte every 50 ms until the test ends
    location: str | None = None  # a 302 to here


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class ListServer:
    """A loopback HTTP server whose answer per path the test sets in `pages`."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    pages: dict[str, Page] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def last(self, path: str) -> Seen:
        return [s for s in self.seen if s.path == path][-1]

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def make_handler(server: Callable[[], ListServer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            lists = server()
            lists.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
            page = lists.pages.get(self.path)
            if page is None:
                self.send_error(404)
                return
            if page.location is not None:
                self.send_response(302)
                self.send_header("Location", page.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self._not_modified(page):
                self.send_response(304)
                self.end_headers()
                return
            body = gzip.compress(page.body) if page.gzip else page.body
            self.send_response(page.status)
            self.send_header("Content-Type", "text/plain")
            if page.etag:
                self.send_header("ETag", page.etag)
            if page.last_modified:
                self.send_header("Last-Modified", page.last_modified)
            if page.gzip or page.encoding:
                self.send_header("Content-Encoding", page.encoding or "gzip")
            if page.length:
                self.send_header("Content-Length", str(len(body) + 500 * page.hang))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up, as it should
                self._send_body(lists, page, body)

        def _not_modified(self, page: Page) -> bool:
            if page.etag is not None:
                return self.headers.get("If-None-Match") == page.etag
            if page.last_modified is not None:
                return self.headers.get("If-Modified-Since") == page.last_modified
            return False

        def _send_body(self, lists: ListServer, page: Page, body: bytes) -> None:
            if page.hang:
                self.wfile.write(body[:10])
                self.wfile.flush()
                lists.release.wait(30)
            elif page.trickle:
                while not lists.release.wait(0.05):
                    self.wfile.write(b"#")
                    self.wfile.flush()
            elif page.truncate:
                self.wfile.write(body[: len(body) // 2])
            else:
                self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def list_server() -> Iterator[ListServer]:
    """A running ListServer on 127.0.0.1, stopped (threads joined) on exit."""
    holder: list[ListServer] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(lambda: holder[0]))
    httpd.daemon_threads = True
    thread = threading.Thread(  # a short poll interval keeps shutdown() quick
        target=httpd.serve_forever, args=(0.02,), name="list-server", daemon=True
    )
    lists = ListServer(httpd, thread)
    holder.append(lists)
    thread.start()
    try:
        yield lists
    finally:
        lists.stop()
