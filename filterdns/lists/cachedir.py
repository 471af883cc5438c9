"""What a list set keeps in `lists.cache_dir` beside the index and the copies.

* `index-reports.json`: every source's status as of the build that wrote `index.bin`, so a
  restart that maps the index still knows what each source yielded and why one was rejected.
* `index-shipped.bin`: an index of every shipped list, what a first start serves while the
  configured index is built; made once (0.3 s) and mapped on later starts.
* `building.json`: present while a running server builds in the background (its pid, since
  when, what serves meanwhile), so `filterdns lists stats` can say so.

`fingerprint_of` sums up what an index was built from, so a stale file is never mistaken for a
current one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filterdns import __version__
from filterdns.config import NEVER_BLOCK_CATEGORY, SHIPPED_PREFIX
from filterdns.lists.index import DomainIndex
from filterdns.lists.indexbuild import IndexBuilder
from filterdns.lists.shipped import NEVER_BLOCK_SOURCE, SHIPPED, shipped_path
from filterdns.lists.sourcereport import SourceReport
from filterdns.lists.sources import SourceAdder, SourceStatus
from filterdns.lists.validate import Stamp

log = logging.getLogger(__name__)

INDEX_FILE = "index.bin"
SHIPPED_INDEX_FILE = "index-shipped.bin"
REPORTS_FILE = "index-reports.json"
BUILDING_FILE = "building.json"


def is_writable(cache_dir: Path) -> bool:
    """Whether the cache directory exists (it is made if need be) and may be written."""
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(cache_dir, os.W_OK)


def fingerprint_of(plan: Sequence[SourceStatus], max_shrink: float) -> str:
    """Changes whenever a source, its file, its content or the checks would change the index."""
    digest = hashlib.sha256(f"filterdns {__version__} max_shrink {max_shrink}".encode())
    for status in plan:
        digest.update(f"\0{status.category}\0{status.source}\0{status.path}".encode())
        if status.path is not None:
            stamp = Stamp.of(status.path)
            if stamp is not None:
                digest.update(f"\0{stamp.size}\0{stamp.mtime_ns}".encode())
    return digest.hexdigest()


def save_reports(cache_dir: Path, plan: Sequence[SourceStatus]) -> None:
    """Keep every source's status beside the index just written (best effort)."""
    target = cache_dir / REPORTS_FILE
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps([status.to_json() for status in plan]))
        os.replace(temp, target)
    except OSError as exc:
        log.warning("cannot save list reports in %s: %s", cache_dir, exc)


def read_reports(cache_dir: Path) -> list[SourceStatus] | None:
    """The statuses `save_reports` kept, or None."""
    try:
        saved = json.loads((cache_dir / REPORTS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, list) or not all(isinstance(d, dict) for d in saved):
        return None
    return [SourceStatus.from_json(data) for data in saved]


def shipped_index(cache_dir: Path) -> DomainIndex:
    """Every shipped list of every category, mapped from `index-shipped.bin` or built."""
    sources = [(NEVER_BLOCK_CATEGORY, NEVER_BLOCK_SOURCE)]
    sources += [(c, s) for c, ss in SHIPPED.items() for s in ss if s.startswith(SHIPPED_PREFIX)]
    plan = [SourceStatus(c, s, "shipped", SourceReport(s), shipped_path(s)) for c, s in sources]
    fingerprint = fingerprint_of(plan, 0.0)
    path = cache_dir / SHIPPED_INDEX_FILE if is_writable(cache_dir) else None
    if path is not None:
        found = DomainIndex.open(path, fingerprint)
        if found is not None:
            return found
    builder = IndexBuilder(spill_dir=path.parent if path is not None else None)
    adder = SourceAdder(builder, None, 100.0)
    for status in plan:
        adder.add(status)
    return builder.finish(path, fingerprint)


@dataclass(frozen=True, slots=True)
class Building:
    """A build in progress in a running server, and what it answers from meanwhile."""

    pid: int
    since: float
    serving: str


def mark_building(cache_dir: Path, serving: str | None) -> None:
    """Say that this process builds while `serving` answers (None: the build is over)."""
    marker = cache_dir / BUILDING_FILE
    try:
        if serving is None:
            marker.unlink(missing_ok=True)
        else:
            marker.write_text(
                json.dumps({"pid": os.getpid(), "since": time.time(), "serving": serving})
            )
    except OSError:
        pass  # only informative


def running_build(cache_dir: Path) -> Building | None:
    """The build a live server has in progress on `cache_dir`, if any."""
    try:
        data = json.loads((cache_dir / BUILDING_FILE).read_text())
        building = Building(int(data["pid"]), float(data["since"]), str(data["serving"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(building.pid, 0)
    except ProcessLookupError:
        return None  # the server died while building: the marker is stale
    except PermissionError:
        pass  # alive, owned by another user
    return building
