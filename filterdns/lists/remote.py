"""Remote list sources: download over HTTP(S) into an on-disk cache that survives restarts.

Policy:

* Every remote list has one cached body in `lists.cache_dir` (`path_for`: a slug of the host plus
  a hash of the URL, ".txt") and a JSON metadata file beside it (".meta.json": ETag,
  Last-Modified, time of the last successful download, size, SHA-256).
* A refresh is a conditional GET (If-None-Match / If-Modified-Since from the metadata). 304 only
  moves `fetched_at`; 200 streams the body (gunzipped when Content-Encoding says gzip) into a
  temporary file in the cache directory, at most `max_bytes` and within `timeout` seconds in
  total (the socket timeout bounds each read, an overall deadline is checked between reads, so a
  server trickling bytes cannot hold a refresh for long). At most 5 redirects, http(s) only.
* The caller's `validate` callback sees the temporary file before it replaces anything, so an HTML
  error page or binary junk served with status 200 never overwrites a good list.
* The body is moved into place with `os.replace`, then the metadata likewise: a reader sees the
  old copy or the new one, never half of one.
* Any failure (HTTP error, refused, DNS, TLS, timeout, too big, rejected, disk) keeps the last good
  copy: the result says "cached" with the reason (naming the URL), or "failed" when there is no
  copy at all. `fetch` never raises for such failures; `cached` reads the disk only, which is what
  a restart without network uses.

`fetch` blocks; the caller runs it in a worker thread (`asyncio.to_thread`) on its own schedule.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from filterdns import __version__
from filterdns.lists.http import SCHEMES, Body, Failure, Limits, download

log = logging.getLogger(__name__)

DIR_MODE = 0o700  # private, like the rest of the state (see privileges.make_private)
FILE_MODE = 0o600
META_SUFFIX = ".meta.json"
PART_SUFFIX = ".part"

Status = Literal["downloaded", "not_modified", "cached", "failed"]


# The package's own version string: importlib.metadata would cost the server 1.5 MB of modules.
USER_AGENT = f"filterdns/{__version__}"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one `fetch` (or `cached`) found for one URL.

    `status` is "downloaded" (a 200 was stored), "not_modified" (304: the copy is current),
    "cached" (the network failed or the body was rejected; the old copy is kept) or "failed"
    (no copy at all). `changed` is true when this call stored a body different from the one
    before it (a 200 with identical content leaves it false). `error` says why a download failed.
    """

    url: str
    path: Path | None
    changed: bool
    status: Status
    error: str | None
    fetched_at: float | None
    size: int


@dataclass(frozen=True, slots=True)
class _Meta:
    """The stored metadata of one cached body."""

    etag: str | None = None
    last_modified: str | None = None
    fetched_at: float | None = None
    size: int = 0
    sha256: str | None = None


def _slug(host: str | None) -> str:
    slug = re.sub(r"[^a-z0-9.-]+", "-", (host or "").lower()).strip(".-")[:60]
    return slug or "nohost"


class RemoteCache:
    """Downloads remote lists into `cache_dir` and hands back the last good copy of each."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout: float = 30.0,
        max_bytes: int = 64 * 2**20,
        user_agent: str = USER_AGENT,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent

    # ------------------------------------------------------------------ paths and disk state

    def path_for(self, url: str) -> Path:
        """The cached body of `url`: a slug of the host and 16 hex digits of sha256(url)."""
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
        try:
            host = urllib.parse.urlsplit(url).hostname
        except ValueError:
            host = None
        return self.cache_dir / f"{_slug(host)}-{digest}.txt"

    def _meta_path(self, body: Path) -> Path:
        return body.with_name(body.stem + META_SUFFIX)

    def _read_meta(self, body: Path) -> _Meta:
        """The stored metadata; an empty one when it is missing or unreadable."""
        try:
            raw = json.loads(self._meta_path(body).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return _Meta()
        if not isinstance(raw, dict):
            return _Meta()

        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) else None

        fetched_at = raw.get("fetched_at")
        size = raw.get("size")
        return _Meta(
            etag=text("etag"),
            last_modified=text("last_modified"),
            fetched_at=float(fetched_at) if isinstance(fetched_at, int | float) else None,
            size=size if isinstance(size, int) else 0,
            sha256=text("sha256"),
        )

    def _on_disk(self, url: str, error: str | None) -> FetchResult:
        """What is on disk for `url`: "cached" with the copy, or "failed" without one."""
        body = self.path_for(url)
        try:
            stat = body.stat()
        except OSError:
            return FetchResult(url, None, False, "failed", error, None, 0)
        meta = self._read_meta(body)
        fetched_at = meta.fetched_at if meta.fetched_at is not None else stat.st_mtime
        return FetchResult(url, body, False, "cached", error, fetched_at, stat.st_size)

    def cached(self, url: str) -> FetchResult:
        """The copy on disk, without touching the network (status "cached" or "failed")."""
        result = self._on_disk(url, None)
        if result.path is None:
            return FetchResult(url, None, False, "failed", f"{url}: no cached copy", None, 0)
        return result

    def _write_meta(self, body: Path, meta: _Meta, url: str) -> None:
        """Write the metadata beside `body` atomically (temporary file, then os.replace)."""
        data = {
            "url": url,
            "etag": meta.etag,
            "last_modified": meta.last_modified,
            "fetched_at": meta.fetched_at,
            "size": meta.size,
            "sha256": meta.sha256,
        }
        target = self._meta_path(body)
        temp = self._new_temp(target.name)
        try:
            with temp.open("w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def _new_temp(self, name: str) -> Path:
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=PART_SUFFIX, dir=self.cache_dir)
        os.close(fd)
        path = Path(temp)
        path.chmod(FILE_MODE)
        return path

    # ------------------------------------------------------------------ fetching

    def fetch(
        self, url: str, *, validate: Callable[[Path], str | None] | None = None
    ) -> FetchResult:
        """Refresh `url` (blocking) and return the copy to use; see the module docstring."""
        try:
            parts = urllib.parse.urlsplit(url)
            scheme, host = parts.scheme.lower(), parts.hostname
        except ValueError as exc:
            return self._failed(url, f"{url}: invalid URL ({exc})")
        if scheme not in SCHEMES:
            return self._failed(url, f"{url}: unsupported scheme {scheme!r} (only http and https)")
        if not host:
            return self._failed(url, f"{url}: no host in the URL")
        try:
            self.cache_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return self._failed(url, f"{url}: cannot create cache directory {self.cache_dir}: "
                                     f"{reason}")  # fmt: skip
        if not self.cache_dir.is_dir():
            return self._failed(url, f"{url}: cache {self.cache_dir} is not a directory")

        body = self.path_for(url)
        previous = self._read_meta(body) if body.is_file() else None
        deadline = time.monotonic() + self.timeout
        try:
            got = self._download(url, body, previous, deadline)
        except Failure as exc:
            return self._failed(url, f"{url}: {exc}")
        if got is None:  # 304: only sent conditions when there is a copy
            assert previous is not None
            return self._not_modified(url, body, previous)
        try:
            return self._store(url, body, previous, got, validate)
        finally:
            with contextlib.suppress(OSError):
                got.temp.unlink(missing_ok=True)

    def _store(
        self,
        url: str,
        body: Path,
        previous: _Meta | None,
        got: Body,
        validate: Callable[[Path], str | None] | None,
    ) -> FetchResult:
        """Validate the downloaded body and move it and its metadata into place."""
        unchanged = previous is not None and previous.sha256 == got.sha256
        if not unchanged and validate is not None:
            reason = validate(got.temp)
            if reason is not None:
                return self._failed(url, f"{url}: rejected: {reason}")
        now = time.time()
        meta = _Meta(got.etag, got.last_modified, now, got.size, got.sha256)
        try:
            if not unchanged:
                os.replace(got.temp, body)
            self._write_meta(body, meta, url)
        except OSError as exc:
            return self._failed(url, f"{url}: cannot store {body}: {exc.strerror or exc}")
        if unchanged:
            log.debug("list %s: downloaded again, content unchanged", url)
        else:
            log.info("list %s: downloaded %d bytes", url, got.size)
        return FetchResult(url, body, not unchanged, "downloaded", None, now, got.size)

    def _failed(self, url: str, error: str) -> FetchResult:
        """Log `error` and fall back on the copy on disk, if any."""
        result = self._on_disk(url, error)
        if result.path is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.fetched_at or 0))
            log.warning("%s; keeping the copy from %s", error, when)
        else:
            log.warning("%s; no cached copy of this list", error)
        return result

    def _not_modified(self, url: str, body: Path, previous: _Meta) -> FetchResult:
        now = time.time()
        meta = _Meta(previous.etag, previous.last_modified, now, previous.size, previous.sha256)
        try:
            self._write_meta(body, meta, url)
        except OSError as exc:
            log.warning("list %s: cannot update its metadata: %s", url, exc.strerror or exc)
        try:
            size = body.stat().st_size
        except OSError as exc:  # removed under our feet
            return self._failed(url, f"{url}: cached copy vanished: {exc.strerror or exc}")
        log.debug("list %s: not modified", url)
        return FetchResult(url, body, False, "not_modified", None, now, size)

    def _download(
        self, url: str, body: Path, previous: _Meta | None, deadline: float
    ) -> Body | None:
        """GET `url` into a temporary file beside `body`; None for 304. Raises Failure."""
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip"}
        if previous is not None:
            if previous.etag:
                headers["If-None-Match"] = previous.etag
            if previous.last_modified:
                headers["If-Modified-Since"] = previous.last_modified
        try:
            temp = self._new_temp(body.name)
        except OSError as exc:
            reason = exc.strerror or exc
            raise Failure(f"cannot create a file in {self.cache_dir}: {reason}") from None
        try:
            got = download(url, headers, temp, Limits(self.timeout, self.max_bytes, deadline))
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise
        if got is None:
            temp.unlink(missing_ok=True)
        return got
