"""What one cached answer costs the server's hot path: parse the packet, hit, pack the reply.

    .venv/bin/python bench/cached_bench.py [--names 2000] [--rounds 7] [--passes 20]

The real chain (access, client, policy with the shipped lists, cache) with every name cached,
without sockets: for each query packet, `wire.parse_query`, `head.resolve_now` (the path of a
cache hit in the server) and `wire.finish`, as `DnsServer._on_datagram` does. Clients with and
without EDNS; the DO bit is set the way the packets say, so the figures can be compared across
commits. Prints the median µs per query of each kind over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from filterdns.app import App
from filterdns.config import load_config_text
from filterdns.dns import wire
from filterdns.dns.model import Request
from filterdns.dns.names import text_to_wire

try:  # the same script measures commits from before replies.analyse moved out of wire
    from filterdns.dns.replies import analyse
except ImportError:
    analyse = wire.analyse  # type: ignore[attr-defined]

CONFIG = """\
server: {{listen: ["127.0.0.1:0"], rate_limit: null}}
upstreams: {{servers: ["127.0.0.1:9"]}}
lists: {{download_defaults: false, cache_dir: "{state}/lists"}}
log: {{database: "{state}/bench.db"}}
profiles: {{kid: {{age_band: 9-12, band_schedules: false}}}}
default_profile: kid
"""
KINDS = ("plain", "edns", "dnssec")


def packet(name: str, kind: str, msg_id: int) -> bytes:
    """A client query for `name`/A: no EDNS, EDNS, or EDNS with the DO bit."""
    header = wire.HEADER.pack(msg_id, wire.RD, 1, 0, 0, 0 if kind == "plain" else 1)
    question = text_to_wire(name) + wire.TYPE_CLASS.pack(wire.TYPE_A, 1)
    if kind == "plain":
        return header + question
    do = 0x8000 if kind == "dnssec" else 0
    return header + question + b"\x00" + wire.RR_FIXED.pack(41, 1232, do, 0)


def reply(name: str) -> wire.Answer:
    """An upstream answer for `name`: two A records."""
    question = text_to_wire(name) + wire.TYPE_CLASS.pack(wire.TYPE_A, 1)
    records = [b"\xc0\x0c" + wire.RR_FIXED.pack(1, 1, 300, 4) + bytes((93, 184, 216, n))
               for n in (1, 2)]  # fmt: skip
    header = wire.HEADER.pack(1, 0x8180, 1, len(records), 0, 0)
    return analyse(header + question + b"".join(records))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--names", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--passes", type=int, default=20)
    args = ap.parse_args()
    state = Path("state/cached-bench")
    state.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before the clock starts
    app = App(load_config_text(CONFIG.format(state=state), source="<bench>"))
    await app.lists.load()
    names = [f"site{i}.example.com" for i in range(args.names)]
    batches = {kind: [packet(n, kind, i) for i, n in enumerate(names)] for kind in KINDS}
    for kind in KINDS:  # store under whatever key this commit gives each kind of query
        for name, data in zip(names, batches[kind], strict=True):
            app.chain.cache._store(wire.parse_query(data).key, reply(name))
    head = app.chain.head
    runs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(args.rounds):
        for kind in KINDS:
            started = time.perf_counter()
            for _ in range(args.passes):
                for data in batches[kind]:
                    request = Request(wire.parse_query(data), "127.0.0.1", 5353, "udp", 0.0)
                    response = head.resolve_now(request)
                    assert response is not None
                    wire.finish(
                        response.answer,
                        request.query,
                        limit=request.limit,
                        ttl_cap=response.ttl_cap,
                        options=response.edns_options,
                    )
            runs[kind].append((time.perf_counter() - started) / (args.passes * args.names) * 1e6)
    for kind in KINDS:
        print(f"{kind:6}  {statistics.median(runs[kind]):.2f} µs per cached query")
    app.lists.close()
    await app.querylog.close()


if __name__ == "__main__":
    asyncio.run(main())
