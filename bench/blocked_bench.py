"""What a blocked answer costs the server, in one process: CPU time per answer, log included.

    .venv/bin/python bench/blocked_bench.py [--names 100000] [--rounds 5] [--passes 4]
        [--version LABEL=DIR ...] [--fold-window S ...] [--edns] [--profile FILE]

make bench's blocked workloads (bench/run.py: the same 100,000-name list, configuration and
query files; blocked_exact asks listed names, blocked_sub a label under them) without sockets
or dnsperf: each query packet goes through `DnsServer._on_datagram` with a socket whose
`sendto` does nothing, so the answer memo, the chain, `finish`, the log row, the alerts and the
log writer (its SQLite inserts in aiosqlite's thread) all run as in the server. Each pass asks
every name of the workload once and the next pass starts a second later (the bench never
repeats a blocked question within a second, so the answer memo keeps nothing); the CPU time of
the whole process (user + system, every thread) from the first query of the measured passes to
the last row written, divided by the answers, is the figure. A warm-up pass first fills the
decisions' memo, as the long run of make bench does.

`mix_blocked` is the blocked lookups of make bench's mix workload (the household and school
day of ../shared/data, 100,000 names) in their order, repeats kept, each sent when it comes in
the mix replayed at `--mix-qps` (make bench's mix rate): the repeats of a blocked name within a
second that the log folds into one row (`log.fold_window`). Besides the CPU time, each workload
prints the lookups logged and the rows they took (fewer with folding).

`--writer-only` measures the log writer by itself (`writer_alone`: the lookups of
blocked_exact, none repeated, and of mix_blocked, stamped at the mix's pace, all queued at
once), with `log.fold_window` 0 and 1 s alternated over `--rounds`.

`--fold-window S` (twice or more, e.g. `--fold-window 0 --fold-window 1`) measures this tree
with `log.fold_window` set to each value in turn, as `--version` does trees.
With `--version LABEL=DIR` (twice or more) each tree is measured in its own process (DIR on
PYTHONPATH, e.g. a `git archive` export), alternating A-B-A-B over `--rounds`; medians and the
ratio to the first version are printed. `--profile FILE` writes a cProfile of one tree's run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # bench/run.py, beside this file

WORKLOADS = ("blocked_exact", "blocked_sub", "mix_blocked")
MIX_QPS = 47_222  # make bench's mix rate (README): the pace the mix's blocked lookups come at
BACKLOG = 2000  # rows queued beyond which the queries wait for the writer
CHUNK = 64  # queries answered between two turns of the event loop (the server reads 64 a turn)


class NullSocket:
    """A UDP socket whose sends go nowhere (counted)."""

    def __init__(self) -> None:
        self.sent = 0

    def sendto(self, data: bytes, _addr: tuple[str, int]) -> int:
        self.sent += 1
        return len(data)


def packets(names: list[str], edns: bool) -> list[bytes]:
    """One query packet per name (type A, RD), with an OPT record when `edns`."""
    from filterdns.dns import wire  # noqa: PLC0415 - from the tree measured
    from filterdns.dns.names import text_to_wire  # noqa: PLC0415

    out = []
    for index, name in enumerate(names):
        header = wire.HEADER.pack(index % 65536, wire.RD, 1, 0, 0, 1 if edns else 0)
        question = text_to_wire(name) + wire.TYPE_CLASS.pack(wire.TYPE_A, 1)
        opt = b"\x00" + wire.RR_FIXED.pack(41, 1232, 0, 0) if edns else b""
        out.append(header + question + opt)
    return out


async def one_pass(
    server: Any, querylog: Any, sock: NullSocket, batch: list[bytes], at: list[float] | None
) -> None:
    """Every packet of `batch` through the server's UDP path, yielding to the loop between
    chunks as the server's reader does, and waiting while the log's queue is long (the bench
    measures what each row costs, not how many a full queue drops); with `at`, each chunk not
    before its first packet's second from the start of the pass."""
    on_datagram, loop = server._on_datagram, asyncio.get_running_loop()
    began = time.monotonic()
    for start in range(0, len(batch), CHUNK):
        if at is not None and (ahead := began + at[start] - time.monotonic()) > 0:
            await asyncio.sleep(ahead)
        for offset, data in enumerate(batch[start : start + CHUNK]):
            addr = ("127.0.0.1", 1024 + (start + offset) % 60000)
            # A tree whose listener batches returns the answer for its batch to send.
            if (answer := on_datagram(sock, data, addr, loop)) is not None:
                sock.sendto(answer, addr)
        await asyncio.sleep(0)
        while querylog.depth > BACKLOG:  # noqa: ASYNC110 - the writer sets no event per row
            await asyncio.sleep(0.001)


async def settled(querylog: Any, rows: int) -> None:
    """Wait until `rows` rows in all have been written or dropped."""
    await querylog.wait_until(lambda stats: stats.written + stats.dropped >= rows)


def workload(work: Path, name: str, app: Any, qps: float) -> tuple[list[str], list[float] | None]:
    """The names the policy blocks of a workload, in order, and for `mix_blocked` the second
    each comes at in the mix."""
    now = time.time()  # the names the policy blocks (a few are on the never-block list)
    lines = (work / f"{'mix' if name == 'mix_blocked' else name}.q").read_text().splitlines()
    names = [(i, line.split()[0]) for i, line in enumerate(lines)]
    kept = [(i, n) for i, n in names if app.policy.verdict("bench", n, now)[0].action != "allow"]
    at = [i / qps for i, _ in kept] if name == "mix_blocked" else None
    return [n for _, n in kept], at


async def measure(
    work: Path, passes: int, edns: bool, fold: float | None, mix_qps: float
) -> dict[str, float]:
    """µs of process CPU time per blocked answer, per workload, in this process's tree."""
    from filterdns.app import App  # noqa: PLC0415 - from the tree measured
    from filterdns.config import load_config  # noqa: PLC0415
    from filterdns.resolvers.querylog import QueryLogResolver  # noqa: PLC0415

    cfg = Path(run.filterdns_server(work, 9, "blocked").argv[-1])
    db = work / "b.db"
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)
    config = load_config(cfg)
    if fold is not None:
        config = replace(config, log=replace(config.log, fold_window=fold))
    app = App(config)
    await app.lists.load()
    await app.querylog.start()
    link = app.chain.link(QueryLogResolver)
    put, queued = link.sink, [0]

    def counted(row: Any) -> bool:
        queued[0] += 1
        return bool(put(row))

    link.sink = counted  # rows queued, so the end of the writing is known
    sock = NullSocket()
    out: dict[str, float] = {}
    for name in WORKLOADS:
        names, at = workload(work, name, app, mix_qps)
        batch = packets(names, edns)
        out[f"{name} names"] = len(batch)
        stats = app.querylog.stats
        await one_pass(app.server, app.querylog, sock, batch, at)  # warm: decisions remembered
        await settled(app.querylog, queued[0])
        await asyncio.sleep(1.1)
        before = (stats.written, getattr(stats, "folded", 0), stats.dropped, sock.sent)
        cpu, wall = time.process_time(), time.monotonic()
        for index in range(passes):
            started = time.monotonic()
            await one_pass(app.server, app.querylog, sock, batch, at)
            if index < passes - 1:  # a second between passes: no answer memo hits
                await asyncio.sleep(max(0.0, started + 1.05 - time.monotonic()))
        await settled(app.querylog, queued[0])
        out[name] = (time.process_time() - cpu) / (passes * len(batch)) * 1e6
        lookups = stats.written - before[0]
        out[f"{name} lookups"] = lookups
        out[f"{name} rows"] = lookups - (getattr(stats, "folded", 0) - before[1])
        out[f"{name} rows/s"] = round(out[f"{name} rows"] / (time.monotonic() - wall))
        out[f"{name} answers"] = sock.sent - before[3]
        out[f"{name} dropped"] = stats.dropped - before[2]
        await asyncio.sleep(1.1)
    names, at = workload(work, "mix_blocked", app, mix_qps)
    app.lists.close()
    await app.querylog.close()
    out.update(await writer_alone(work, config.log, names, at or [], passes))
    return out


async def writer_alone(
    work: Path, log: Any, names: list[str], at: list[float], passes: int
) -> dict[str, float]:
    """The log writer by itself on the mix's blocked lookups (stamped at the mix's pace, the
    passes a second apart), all queued at once: lookups and rows it stores a second, and the
    process's CPU time per lookup, until the last is written."""
    from filterdns.querylog.store import LogRecord, QueryLog  # noqa: PLC0415

    db = work / "w.db"
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)
    t0, span = time.time(), (at[-1] if at else 0.0) + 1.0
    records = [
        LogRecord(t0 + p * span + when, "127.0.0.1", None, "bench", name, "A", "blocked",
                  "adult", "age band 9-12", f"adult is blocked for bench; {name} is listed",
                  "list.txt", "nxdomain")
        for p in range(passes) for name, when in zip(names, at, strict=True)
    ]  # fmt: skip
    size = len(records) + 1
    querylog = QueryLog(replace(log, database=db), queue_size=size, flush_interval=0.01)
    await querylog.start()
    cpu, wall = time.process_time(), time.monotonic()
    for record in records:
        querylog.put(record)
    await settled(querylog, len(records))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    rows = len(records) - getattr(querylog.stats, "folded", 0)
    await querylog.close()
    return {
        "writer lookups/s": round(len(records) / wall),
        "writer rows/s": round(rows / wall),
        "writer rows": rows,
        "writer µs/lookup": round(cpu / len(records) * 1e6, 2),
    }


async def writer_rounds(work: Path, rounds: int, passes: int, mix_qps: float) -> None:
    """`writer_alone` on blocked_exact (no repeats) and on the mix's blocked lookups, with
    `log.fold_window` 0 and 1 s alternated over `rounds`; medians printed."""
    from filterdns.app import App  # noqa: PLC0415 - from the tree measured
    from filterdns.config import load_config  # noqa: PLC0415

    config = load_config(Path(run.filterdns_server(work, 9, "blocked").argv[-1]))
    app = App(config)
    await app.lists.load()
    exact, _ = workload(work, "blocked_exact", app, mix_qps)
    shapes = {"blocked_exact": (exact, [i / mix_qps for i in range(len(exact))]),
              "mix_blocked": workload(work, "mix_blocked", app, mix_qps)}  # fmt: skip
    app.lists.close()
    found: dict[tuple[str, float], list[dict[str, float]]] = {}
    for round_no in range(rounds):
        for shape, (names, at) in shapes.items():
            for fold in (0.0, 1.0) if round_no % 2 == 0 else (1.0, 0.0):
                log = replace(config.log, fold_window=fold)
                out = await writer_alone(work, log, names, at or [], passes)
                found.setdefault((shape, fold), []).append(out)
    for (shape, fold), outs in sorted(found.items()):
        cpu = [o["writer µs/lookup"] for o in outs]
        print(f"{shape:13} fold {fold:g}s rows {outs[0]['writer rows']:.0f}  µs CPU per lookup"
              f" median {statistics.median(cpu):.2f} [{min(cpu):.2f}-{max(cpu):.2f}]  lookups/s"
              f" {statistics.median(o['writer lookups/s'] for o in outs):.0f}  rows/s"
              f" {statistics.median(o['writer rows/s'] for o in outs):.0f}")  # fmt: skip


def child(args: argparse.Namespace) -> None:
    """Measure the tree this process imports; one JSON line on stdout."""
    work = Path(args.work).resolve()
    if args.profile:
        import cProfile  # noqa: PLC0415

        profiler = cProfile.Profile()
        profiler.enable()
        result = asyncio.run(measure(work, args.passes, args.edns, args.fold_window, args.mix_qps))
        profiler.disable()
        profiler.dump_stats(args.profile)
    else:
        result = asyncio.run(measure(work, args.passes, args.edns, args.fold_window, args.mix_qps))
    print(json.dumps(result), flush=True)


def prepare(work: Path, names: int) -> None:
    """make bench's list and query files, made once in `work`."""
    if not (work / "blocked_sub.q").exists() or not (work / "list.txt").exists():
        work.mkdir(parents=True, exist_ok=True)
        run.prepare(work, names, 2_000, 20_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--names", type=int, default=100_000, help="names in the list")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--passes", type=int, default=4, help="measured passes per workload")
    ap.add_argument("--version", action="append", default=[], help="LABEL=DIR (PYTHONPATH)")
    ap.add_argument("--work", default="state/blocked-bench")
    ap.add_argument("--edns", action="store_true", help="queries with an OPT record")
    ap.add_argument(
        "--fold-window",
        type=float,
        action="append",
        default=None,
        help="log.fold_window in seconds (again: one run each, alternated)",
    )
    ap.add_argument("--mix-qps", type=float, default=MIX_QPS, help="mix_blocked's pace")
    ap.add_argument(
        "--writer-only",
        action="store_true",
        help="the log writer alone, fold_window 0 and 1s, over --rounds (this tree)",
    )
    ap.add_argument("--profile", help="write a cProfile of one run here (one tree)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.fold_window = args.fold_window[0] if args.fold_window else None
        child(args)
        return
    work = Path(args.work).resolve()
    prepare(work, args.names)
    if args.writer_only:
        asyncio.run(writer_rounds(work, args.rounds, args.passes, args.mix_qps))
        return
    versions = [v.split("=", 1) for v in args.version] or [["this", ""]]
    folds = [(f"fold {w:g}s", w) for w in args.fold_window or []]
    if folds:  # one tree, each window in turn
        versions = [[label, versions[0][1]] for label, _ in folds]
    runs: dict[str, dict[str, list[float]]] = {
        label: {w: [] for w in WORKLOADS} for label, _ in versions
    }
    for round_no in range(1 if args.profile else args.rounds):
        order = versions if round_no % 2 == 0 else versions[::-1]
        for label, tree in order:
            env = dict(os.environ)
            if tree:
                env["PYTHONPATH"] = str(Path(tree).resolve())
            argv = [sys.executable, __file__, "--child", "--work", str(work)]
            argv += ["--passes", str(args.passes)] + (["--edns"] if args.edns else [])
            argv += ["--mix-qps", str(args.mix_qps)]
            argv += ["--fold-window", str(dict(folds)[label])] if folds else []
            argv += ["--profile", args.profile] if args.profile else []
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            for workload in WORKLOADS:
                runs[label][workload].append(result[workload])
            shown = "  ".join(f"{w} {v:.2f}" if w in WORKLOADS else f"{w} {v}"
                              for w, v in result.items())  # fmt: skip
            print(f"round {round_no + 1} {label:10} µs CPU per answer: {shown}", flush=True)
    print_medians(runs, [label for label, _ in versions], list(WORKLOADS))


def print_medians(
    runs: dict[str, dict[str, list[float]]], labels: list[str], workloads: list[str]
) -> None:
    """Each version's median per workload, and its ratio to the first version's (range)."""
    base = labels[0]
    for workload in workloads:
        for label in labels:
            values = runs[label][workload]
            line = f"{workload:13} {label:10} median {statistics.median(values):6.2f} µs"
            if label != base:
                ratios = [v / b for v, b in zip(values, runs[base][workload], strict=True)]
                line += f"  /{base} {statistics.median(ratios):.3f}"
                line += f" [{min(ratios):.3f}-{max(ratios):.3f}]"
            print(line)


if __name__ == "__main__":
    main()
