"""What judging answers (CNAME inspection, rebinding protection) costs a cache hit.

    .venv/bin/python bench/answer_bench.py [--names 2000] [--rounds 5]

The real chain (access, client, policy with the shipped lists, cache) answers cached questions
through `resolve_now`, the path a cache hit takes in the server, without sockets: once with
`blocking.cname_inspection` and `rebinding_protection` on (the default), once with both off, in
alternating rounds (A-B-A-B). Two kinds of cached answers: a plain A record, and the CDN shape
most popular names have (two CNAMEs, then A records). Prints the median µs per query of each and
the ratio on/off.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from filterdns.app import App
from filterdns.config import load_config_text
from filterdns.dns import outgoing, replies, wire
from filterdns.dns.model import Request
from filterdns.dns.names import text_to_wire

CONFIG = """\
server: {{listen: ["127.0.0.1:0"], rate_limit: null}}
upstreams: {{servers: ["127.0.0.1:9"]}}
lists: {{download_defaults: false, cache_dir: "{state}/lists"}}
log: {{database: "{state}/bench.db"}}
profiles: {{kid: {{age_band: 9-12, band_schedules: false}}}}
default_profile: kid
blocking: {{cname_inspection: {on}, rebinding_protection: {on}}}
"""


def reply(name: str, shape: str) -> wire.Answer:
    """An upstream answer for `name`: one A record, or CNAME -> CNAME -> two A records."""
    qname = text_to_wire(name)
    question = qname + wire.TYPE_CLASS.pack(wire.TYPE_A, 1)
    records = []
    owner = b"\xc0\x0c"
    if shape == "cdn":
        for hop in (f"{name}.edgekey.net", f"e{len(name)}.a.akamaiedge.net"):
            target = text_to_wire(hop)
            records.append(owner + wire.RR_FIXED.pack(5, 1, 300, len(target)) + target)
            owner = target
    for last in (1, 2):
        rdata = bytes((93, 184, 216, last))
        records.append(owner + wire.RR_FIXED.pack(1, 1, 300, 4) + rdata)
    header = wire.HEADER.pack(1, 0x8180, 1, len(records), 0, 0)
    return replies.analyse(header + question + b"".join(records))


def requests(names: list[str]) -> list[Request]:
    out = []
    for index, name in enumerate(names):
        packet = outgoing.make_query(text_to_wire(name), wire.TYPE_A, 1, index % 65536)
        out.append(Request(wire.parse_query(packet), "127.0.0.1", 5353, "udp", 0.0))
    return out


async def timed(on: bool, shape: str, names: list[str], state: Path, passes: int) -> float:
    """µs per resolve_now over `passes` passes through every cached name."""
    config = load_config_text(CONFIG.format(state=state, on=str(on).lower()), source="<bench>")
    app = App(config)
    await app.lists.load()
    for name, request in zip(names, requests(names), strict=True):
        app.chain.cache._store(request.query.key, reply(name, shape))
    batch = requests(names)
    head = app.chain.head
    for request in batch:  # warm the decisions
        assert head.resolve_now(request) is not None
    started = time.perf_counter()
    for _ in range(passes):
        for request in batch:
            head.resolve_now(request)
    seconds = time.perf_counter() - started
    app.lists.close()
    await app.querylog.close()
    return seconds / (passes * len(batch)) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--names", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--passes", type=int, default=20)
    args = ap.parse_args()
    state = Path("state/answer-bench")
    state.mkdir(parents=True, exist_ok=True)
    asyncio.run(measure(args, state))


async def measure(args: argparse.Namespace, state: Path) -> None:
    names = [f"site{i}.example.com" for i in range(args.names)]
    for shape in ("plain", "cdn"):
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for on in (True, False):
                runs[on].append(await timed(on, shape, names, state, args.passes))
        on, off = statistics.median(runs[True]), statistics.median(runs[False])
        print(f"{shape:5}  judged {on:.2f} µs  not judged {off:.2f} µs  ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
