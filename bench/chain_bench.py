"""What the serving thread spends per answer on the chain, without the log writer's SQLite.

    .venv/bin/python bench/chain_bench.py --version base=DIR --version new=DIR
        [--rounds 4] [--passes 4] [--edns] [--no-memo] [--workloads blocked_exact,cached]

make bench's workloads (bench/run.py's configuration, list and query files, made once in
`--work` as bench/blocked_bench.py makes them) through `DnsServer._on_datagram` with a socket
whose `sendto` does nothing: the answer memo, the parse, every link, the blocked answer and
`finish` run as in the server, but the query log's sink only counts the row, so the CPU time
is the serving thread's alone (bench/blocked_bench.py measures the writer too). blocked_exact
and blocked_sub ask the names the policy blocks, cached the cached workload's allowed names with
every one of them in the cache. Each pass asks every name once, a second after the last (so the
answer memo keeps nothing from pass to pass unless a name comes back within its second);
`--no-memo` turns the answer memo off, so cached hits go down the whole chain, as the mix's
names asked once a second do. The figure of a run is the least disturbed pass (the lowest CPU
time per answer: the machine is shared); each tree runs in its own process (DIR on PYTHONPATH,
e.g. a `git archive` export), alternating over the rounds; medians and the median of the
per-round ratios to the first tree are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py, beside this file
from blocked_bench import NullSocket, packets, prepare, print_medians

WORKLOADS = ("blocked_exact", "blocked_sub", "cached")


def cached_reply(name: str) -> Any:
    """An upstream answer for `name`: two A records of TTL 300."""
    from filterdns.dns import replies, wire  # noqa: PLC0415 - from the tree measured
    from filterdns.dns.names import text_to_wire  # noqa: PLC0415

    question = text_to_wire(name) + wire.TYPE_CLASS.pack(wire.TYPE_A, 1)
    records = [b"\xc0\x0c" + wire.RR_FIXED.pack(1, 1, 300, 4) + bytes((93, 184, 216, n))
               for n in (1, 2)]  # fmt: skip
    return replies.analyse(wire.HEADER.pack(1, 0x8180, 1, 2, 0, 0) + question + b"".join(records))


async def measure(work: Path, workloads: list[str], passes: int, edns: bool, memo: bool) -> Any:
    """µs of process CPU time per answer, per workload, in this process's tree."""
    from filterdns.app import App  # noqa: PLC0415 - from the tree measured
    from filterdns.config import load_config  # noqa: PLC0415
    from filterdns.dns import wire  # noqa: PLC0415
    from filterdns.resolvers.querylog import QueryLogResolver  # noqa: PLC0415

    app = App(load_config(Path(run.filterdns_server(work, 9, "chain").argv[-1])))
    await app.lists.load()
    app.chain.link(QueryLogResolver).sink = lambda _row: True  # counted nowhere, written never
    server, sock, loop = app.server, NullSocket(), asyncio.get_running_loop()
    if not memo:
        server._memo = None
    out: dict[str, float] = {}
    now = time.time()
    for workload in workloads:
        lines = (work / f"{workload}.q").read_text().splitlines()
        names = list(dict.fromkeys(line.split()[0] for line in lines))
        allowed = workload == "cached"
        verdict = app.policy.verdict
        names = [n for n in names if (verdict("bench", n, now)[0].action == "allow") == allowed]
        batch = packets(names, edns)
        if allowed:
            for name, data in zip(names, batch, strict=True):
                app.chain.cache._store(wire.parse_query(data).key, cached_reply(name))
        on_datagram = server._on_datagram
        each = []
        for index in range(passes + 1):  # the first pass warms the decisions' memo
            cpu = time.process_time()
            for number, data in enumerate(batch):
                addr = ("127.0.0.1", 1024 + number % 60000)
                # A tree whose listener batches returns the answer for its batch to send.
                if (answer := on_datagram(sock, data, addr, loop)) is not None:
                    sock.sendto(answer, addr)
            if index:
                each.append((time.process_time() - cpu) / len(batch) * 1e6)
            await asyncio.sleep(1.05)
        out[workload] = min(each)
    app.lists.close()
    await app.querylog.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--names", type=int, default=100_000, help="names in the list")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--passes", type=int, default=4, help="measured passes per workload")
    ap.add_argument("--version", action="append", default=[], help="LABEL=DIR (PYTHONPATH)")
    ap.add_argument("--work", default="state/blocked-bench")
    ap.add_argument("--edns", action="store_true", help="queries with an OPT record")
    ap.add_argument("--no-memo", action="store_true", help="the answer memo off")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work).resolve()
    workloads = args.workloads.split(",")
    if args.child:
        result = asyncio.run(measure(work, workloads, args.passes, args.edns, not args.no_memo))
        print(json.dumps(result), flush=True)
        return
    prepare(work, args.names)
    versions = [v.split("=", 1) for v in args.version] or [["this", ""]]
    runs: dict[str, dict[str, list[float]]] = {
        label: {w: [] for w in workloads} for label, _ in versions
    }
    for round_no in range(args.rounds):
        for label, tree in versions if round_no % 2 == 0 else versions[::-1]:
            env = dict(os.environ)
            if tree:
                env["PYTHONPATH"] = str(Path(tree).resolve())
            argv = [sys.executable, __file__, "--child", "--work", str(work), "--passes",
                    str(args.passes), "--workloads", args.workloads]  # fmt: skip
            argv += (["--edns"] if args.edns else []) + (["--no-memo"] if args.no_memo else [])
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            for workload in workloads:
                runs[label][workload].append(result[workload])
            shown = "  ".join(f"{w} {result[w]:.2f}" for w in workloads)
            print(f"round {round_no + 1} {label:10} µs CPU per answer: {shown}", flush=True)
    print_medians(runs, [label for label, _ in versions], workloads)


if __name__ == "__main__":
    main()
