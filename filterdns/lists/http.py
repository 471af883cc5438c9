"""One HTTP(S) GET of a list into a temporary file, within a size limit and a deadline.

httpx is the one HTTP client of the project (DNS over HTTPS, webhooks, lists). Here it is used
synchronously (a refresh runs in a worker thread or the list builder's own process) with
redirects followed by hand, so that each hop is checked (http(s) only, at most MAX_REDIRECTS,
within the deadline), and the body read raw: gzip is inflated here in bounded steps, so a small
"gzip bomb" never fills memory or disk past `max_bytes`. Every failure becomes `Failure` with a
reason a person can act on ("connection refused", "HTTP 404 Not Found", "larger than 64 MiB").
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx (about 3 MB with http.client and email) is imported by the first
    import httpx  # download: a server with only local lists never loads it

MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
CHUNK = 64 * 1024


class Failure(Exception):
    """A download failed; the message is the reason without the URL."""


@dataclass(frozen=True, slots=True)
class Body:
    """A 200 response written to a temporary file."""

    temp: Path
    etag: str | None
    last_modified: str | None
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Limits:
    """How long and how big one download may be."""

    timeout: float  # seconds for the whole download, redirects included
    max_bytes: int  # after inflating
    deadline: float  # time.monotonic() at which it gives up


def human_size(n: int) -> str:
    """1048576 -> "1 MiB"; sizes that are not whole units in bytes."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def download(url: str, headers: dict[str, str], temp: Path, limits: Limits) -> Body | None:
    """GET `url` into `temp` (created by the caller); None on 304. Raises Failure."""
    import httpx  # noqa: PLC0415 - see the import at the top

    host = httpx.URL(url).host
    context = ssl.create_default_context()  # the system's trust store, as for the rest
    with httpx.Client(verify=context, timeout=limits.timeout, follow_redirects=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            with _guarded(host, limits.timeout), client.stream("GET", url, headers=headers) as got:
                if got.status_code == 304:
                    return None
                if got.is_redirect and "location" in got.headers:
                    url = _next_hop(got, limits)
                    host = httpx.URL(url).host
                    continue
                if got.status_code != 200:
                    raise Failure(f"HTTP {got.status_code} {got.reason_phrase}")
                return _receive(got, temp, host, limits)
    raise Failure(f"more than {MAX_REDIRECTS} redirects (last to {url})")


def _next_hop(response: httpx.Response, limits: Limits) -> str:
    import httpx  # noqa: PLC0415 - see the import at the top

    target = str(response.url.join(response.headers["location"]))
    if httpx.URL(target).scheme.lower() not in SCHEMES:
        raise Failure(f"redirected to {target}, which is not http(s)")
    if time.monotonic() >= limits.deadline:
        raise Failure(f"timed out after {limits.timeout:g} s (following redirects)")
    return target


@contextlib.contextmanager
def _guarded(host: str, timeout: float) -> Iterator[None]:
    """httpx's errors as Failure with a reason (the cause chain holds the OS error)."""
    import httpx  # noqa: PLC0415 - see the import at the top

    try:
        yield
    except httpx.TimeoutException:
        raise Failure(f"timed out after {timeout:g} s") from None
    except httpx.UnsupportedProtocol as exc:
        raise Failure(str(exc)) from None
    except (httpx.TransportError, OSError, ValueError) as exc:
        raise Failure(describe_error(_root(exc), host, timeout)) from None


def _root(exc: BaseException) -> BaseException:
    """The OS-level error under httpx's wrappers (the last one of the cause chain)."""
    seen = exc
    while (below := seen.__cause__ or seen.__context__) is not None:
        seen = below
    return seen


def describe_error(exc: BaseException, host: str, timeout: float) -> str:
    """A short reason for a low-level network error."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    httpx = sys.modules.get("httpx")  # its errors come only once a download loaded it
    if httpx is not None and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "the server closed the connection without a whole response"
    return str(exc) or type(exc).__name__


class _Sink:
    """Counts, hashes and writes what arrives; Failure past `max_bytes` or a write error."""

    def __init__(self, out: Any, temp: Path, max_bytes: int) -> None:
        self.out, self.temp, self.max_bytes = out, temp, max_bytes
        self.size = 0
        self.digest = hashlib.sha256()

    def take(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise Failure(f"larger than {human_size(self.max_bytes)}")
        self.digest.update(data)
        try:
            self.out.write(data)
        except OSError as exc:
            raise Failure(f"cannot write {self.temp}: {exc.strerror or exc}") from None


def _inflater(response: httpx.Response) -> Any:
    encoding = (response.headers.get("content-encoding") or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "identity":
        return None
    raise Failure(f"unsupported Content-Encoding {encoding!r}")


def _declared(response: httpx.Response, compressed: bool, max_bytes: int) -> int | None:
    length = response.headers.get("content-length")
    if length is None or not length.strip().isdigit():
        return None
    declared = int(length)
    if not compressed and declared > max_bytes:
        raise Failure(f"larger than {human_size(max_bytes)} (Content-Length {declared})")
    return declared


def _receive(response: httpx.Response, temp: Path, host: str, limits: Limits) -> Body:
    """Stream the raw body into `temp`, inflating gzip in bounded steps, within the limits."""
    import httpx  # noqa: PLC0415 - see the import at the top

    inflater = _inflater(response)
    declared = _declared(response, inflater is not None, limits.max_bytes)
    received = 0
    try:
        out_file = temp.open("wb")
    except OSError as exc:
        raise Failure(f"cannot write {temp}: {exc.strerror or exc}") from None
    with out_file as out:
        sink = _Sink(out, temp, limits.max_bytes)
        chunks = response.iter_raw()  # what each read brings: the deadline is checked between
        while True:
            if time.monotonic() >= limits.deadline:
                raise Failure(f"timed out after {limits.timeout:g} s")
            try:
                chunk = next(chunks, b"")
            except httpx.RemoteProtocolError:
                whole = f" of {declared} bytes" if declared is not None else " bytes"
                raise Failure(f"the connection closed after {received}{whole}") from None
            except httpx.TimeoutException:
                raise Failure(f"timed out after {limits.timeout:g} s") from None
            except (httpx.TransportError, OSError) as exc:
                raise Failure(describe_error(_root(exc), host, limits.timeout)) from None
            if not chunk:
                break
            received += len(chunk)
            if received > limits.max_bytes:
                raise Failure(f"larger than {human_size(limits.max_bytes)}")
            _inflate_into(sink, inflater, chunk)
        if declared is not None and received < declared:
            raise Failure(f"the connection closed after {received} of {declared} bytes")
        if inflater is not None:
            if not inflater.eof:
                raise Failure("truncated gzip body")
            sink.take(inflater.flush())
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise Failure(f"cannot write {temp}: {exc.strerror or exc}") from None
    etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
    return Body(temp, etag, modified, sink.size, sink.digest.hexdigest())


def _inflate_into(sink: _Sink, inflater: Any, chunk: bytes) -> None:
    if inflater is None:
        sink.take(chunk)
        return
    data = chunk
    while data:  # bounded steps: a small gzip bomb never fills memory
        try:
            sink.take(inflater.decompress(data, CHUNK))
        except zlib.error as exc:
            raise Failure(f"bad gzip body: {exc}") from None
        data = inflater.unconsumed_tail
