"""Which filterdns functions run as Python while the proxy answers: printed one per line.

    python -m tests.integration.hotpath_probe

Run by `test_compiled.py` on the compiled modules and on the Python ones. The proxy (the test
harness, a fake upstream, a list and a child's profile) answers every kind of query once first,
so what is set up once is not counted; then a profiler notes every interpreted filterdns
function called while it answers misses (each upstream answer checked for CNAME cloaking and
rebinding), a cached answer and a blocked name, over UDP and TCP. Compiled functions have no
Python frames, so they never show.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from tests.fakes.upstream import FakeUpstream
from tests.integration.harness import config_for, running_proxy

RECORDS = {
    ("warm.example", "A"): ["192.0.2.1"],
    ("school.example", "A"): ["192.0.2.7"],
    ("www.school.example", "A"): ["192.0.2.8"],
}


# Modules whose timers and tasks run beside the queries (the file watches, the grants' look,
# the log writer): a call whose outermost filterdns frame is theirs is not the query's, so the
# probe does not depend on whether a timer fired while it listened.
BACKGROUND = (
    "app/",
    "lists/catalog.py",
    "lists/freshness.py",
    "ops/",
    "policy/grants.py",
    "querylog/store.py",
)


def _module(frame: FrameType) -> str | None:
    where = frame.f_code.co_filename
    return where.split("/filterdns/", 1)[1] if "/filterdns/" in where else None


def _outermost(frame: FrameType) -> str:
    """The module of the outermost filterdns frame calling `frame` (or its own)."""
    found = _module(frame) or ""
    caller = frame.f_back
    while caller is not None:
        found = _module(caller) or found
        caller = caller.f_back
    return found


async def probe() -> set[str]:
    seen: set[str] = set()

    def note(frame: FrameType, event: str, _arg: Any) -> None:
        module = _module(frame)
        if event == "call" and module is not None and not _outermost(frame).startswith(BACKGROUND):
            seen.add(f"{module}:{frame.f_code.co_name}")

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "gambling.txt").write_text("casino.example\n")
        extra = (
            f"categories: {{gambling: [{Path(tmp) / 'gambling.txt'}]}}\n"
            f"log: {{database: {Path(tmp) / 'filterdns.db'}}}\n"
            "profiles: {kid: {age_band: 9-12, band_schedules: false}}\ndefault_profile: kid\n"
        )
        async with (
            FakeUpstream(RECORDS) as upstream,
            running_proxy(config_for(upstream.address, extra=extra)) as proxy,
        ):
            for tcp in (False, True):  # each path once, the client's imports too
                await proxy.query("warm.example", tcp=tcp)
                await proxy.query("warm.casino.example", tcp=tcp)
            sys.setprofile(note)
            try:
                for tcp in (False, True):
                    await proxy.query("school.example", tcp=tcp)  # a miss, then cached
                    await proxy.query("www.school.example", tcp=tcp)  # a new site
                    await proxy.query("www.casino.example", tcp=tcp)  # listed: blocked
            finally:
                sys.setprofile(None)
    return seen


if __name__ == "__main__":
    print("\n".join(sorted(asyncio.run(probe()))))
